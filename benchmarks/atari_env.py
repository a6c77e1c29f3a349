"""Environment frames per second: atari57's batched env vs ale-py used directly.

Steps N copies of a game with uniformly random actions (the same action array
for every contender), through

  * ale-py's `AtariVectorEnv` configured exactly as atari57 configures it
    (SAME_STEP autoreset, life-loss info, no C++ reward clipping), so the
    difference is the cost of atari57's Python layer (axis transpose, score
    and life bookkeeping, action checks);
  * ale-py's `AtariVectorEnv` with its own defaults, for reference;
  * `atari57.make_batched` with the paper's options.

Repetitions alternate between contenders so that load from other processes on
a shared machine hits them alike; medians are printed. Frames are emulator
frames: 4 per agent step (action repeat 4).

  python benchmarks/atari_env.py --game pong --num_envs 8 --steps 1000 --repeats 7
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np
from ale_py import vector_env as ale_vector_env
from gymnasium.vector import AutoresetMode

import atari57


def _ale_as_atari57(game, num_envs):
  return ale_vector_env.AtariVectorEnv(
      game, num_envs, autoreset_mode=AutoresetMode.SAME_STEP,
      episodic_life=False, life_loss_info=True, reward_clipping=False,
      use_fire_reset=False)


def _ale_defaults(game, num_envs):
  return ale_vector_env.AtariVectorEnv(game, num_envs)


class _Ale:
  """Times `AtariVectorEnv.step`."""

  def __init__(self, env):
    self._env = env
    env.reset(seed=0)

  def step(self, actions):
    self._env.step(actions)

  def close(self):
    self._env.close()


class _Atari57:
  """Times `AtariBatchedEnv.step` (the frame view is returned, as actors get it)."""

  def __init__(self, env):
    self._env = env
    env.reset()

  def step(self, actions):
    self._env.step(actions)

  def close(self):
    self._env.close()


def _frames_per_second(contender, actions):
  start = time.perf_counter()
  for a in actions:
    contender.step(a)
  elapsed = time.perf_counter() - start
  return actions.shape[0] * actions.shape[1] * atari57.ACTION_REPEAT / elapsed


class _Replay:
  """Stands in for ale-py: returns one recorded step result, instantly."""

  def __init__(self, env, actions):
    self._result = env.step(actions)

  def step(self, actions):
    del actions
    return self._result

  def close(self):
    pass


def _layer_microseconds(game, num_envs, actions):
  """atari57's own cost per batched step, with ale-py's work taken out.

  On a shared machine the interleaved medians above carry a few percent of
  noise; this times the Python layer alone by replacing the C++ environment
  (a private attribute, acceptable in a benchmark) with a recorded result.
  """
  env = atari57.make_batched(game, num_envs, seed=0)
  env.reset()
  env._env = _Replay(env._env, actions[0])  # pylint: disable=protected-access
  for a in actions[:100]:
    env.step(a)
  start = time.perf_counter()
  for a in actions:
    env.step(a)
  return (time.perf_counter() - start) / len(actions) * 1e6


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--game", default="pong")
  parser.add_argument("--num_envs", type=int, default=8)
  parser.add_argument("--steps", type=int, default=1000,
                      help="agent steps of all N envs per repetition")
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--warmup_steps", type=int, default=100)
  args = parser.parse_args()

  game = atari57.canonical_name(args.game)
  contenders = {
      "ale-py AtariVectorEnv, atari57's configuration":
          _Ale(_ale_as_atari57(game, args.num_envs)),
      "ale-py AtariVectorEnv, ale-py defaults":
          _Ale(_ale_defaults(game, args.num_envs)),
      "atari57.make_batched (this package)":
          _Atari57(atari57.make_batched(game, args.num_envs, seed=0)),
  }
  num_actions = atari57.make_batched(game, 1).num_actions
  rng = np.random.default_rng(0)
  actions = rng.integers(0, num_actions, (args.steps, args.num_envs),
                         dtype=np.int32)
  for contender in contenders.values():
    _frames_per_second(contender, actions[:args.warmup_steps])

  results = {name: [] for name in contenders}
  for _ in range(args.repeats):
    for name, contender in contenders.items():
      results[name].append(_frames_per_second(contender, actions))
  for contender in contenders.values():
    contender.close()

  print(f"{game}, {args.num_envs} envs, {args.steps} agent steps x "
        f"{args.repeats} repetitions, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()})")
  medians = {}
  for name, fps in results.items():
    medians[name] = statistics.median(fps)
    print(f"  {name:48s} {medians[name]:10,.0f} frames/s  "
          f"(min {min(fps):,.0f}, max {max(fps):,.0f})")
  direct = medians["ale-py AtariVectorEnv, atari57's configuration"]
  ours = medians["atari57.make_batched (this package)"]
  steps_per_second = ours / (atari57.ACTION_REPEAT * args.num_envs)
  overhead_us = (1 / ours - 1 / direct) * atari57.ACTION_REPEAT * args.num_envs * 1e6
  print(f"atari57 layer, from the medians: {100 * (1 - ours / direct):.1f}% "
        f"of ale-py's throughput in the same configuration "
        f"({overhead_us:.0f} us per batched step at "
        f"{steps_per_second:,.0f} batched steps/s)")
  layer_us = _layer_microseconds(game, args.num_envs, actions)
  step_us = 1e6 * atari57.ACTION_REPEAT * args.num_envs / direct
  print(f"atari57 layer alone (ale-py replaced by a recorded result): "
        f"{layer_us:.1f} us per batched step = {100 * layer_us / step_us:.1f}% "
        f"of ale-py's {step_us:,.0f} us step")


if __name__ == "__main__":
  main()
