"""The paper's Atari evaluation protocol, independent of TensorFlow.

The paper (its Atari experiments, Table 4 and Appendix C): each score is the
mean over 200 evaluation episodes, and each episode begins with a random
number of no-ops drawn uniformly from [1, 30]. As in the DQN papers these are agent steps of the NOOP action (each repeated
4 frames), played before the policy acts; ale-py's own no-op start is turned
off so the episode starts are exactly these. An episode is a whole game; its
score is the unclipped game score, rewards during the no-ops included.
"""

from typing import Callable, NamedTuple

import dm_env
import numpy as np

from atari57 import env as env_lib
from impala_tf.acting import envs

# A policy maps the current timestep to an action index. The first call of
# each episode gets a FIRST timestep (the observation after the no-ops), so
# recurrent policies know when to reset their state; with life-loss
# terminals a lost life shows as a MID timestep with discount 0.
Policy = Callable[[dm_env.TimeStep], int]


class EvaluationResult(NamedTuple):
  """Scores of `num_episodes` = E evaluation episodes.

  Attributes:
    mean_score: the mean of `scores`, the number the paper reports per game.
    scores: float64 [E], unclipped game score of each episode.
    lengths: int64 [E], agent steps of each episode, no-ops included.
    noops: int64 [E], the no-op steps each episode began with.
  """
  mean_score: float
  scores: np.ndarray
  lengths: np.ndarray
  noops: np.ndarray


def evaluate(game: str, policy: Policy, *, num_episodes: int = 200,
             max_noops: int = 30, seed: int = 0,
             **options) -> EvaluationResult:
  """Plays `num_episodes` games of `game` with `policy`, one after the other.

  Args:
    game: one of `atari57.GAMES`, in any accepted spelling.
    policy: `policy(timestep) -> action index`, see `Policy`.
    num_episodes: E; 200 in the paper.
    max_noops: each episode starts with a uniform number of NOOP steps in
      [1, max_noops]; 30 in the paper.
    seed: seeds the emulator and the no-op draws.
    **options: fields of `env_lib.AtariOptions` (e.g. `full_action_space`,
      `repeat_action_probability`); `noop_max` is not one of them, the
      protocol's own no-ops replace ale-py's.
  """
  if num_episodes < 1:
    raise ValueError(f"num_episodes must be >= 1 (200 in the paper), got "
                     f"{num_episodes}.")
  if max_noops < 1:
    raise ValueError(f"max_noops must be >= 1 (30 in the paper), got "
                     f"{max_noops}.")
  if "noop_max" in options:
    raise ValueError(
        "evaluate() does its own 1..max_noops no-op steps and turns ale-py's "
        "no-op start off; pass max_noops instead of noop_max.")
  env = env_lib.AtariEnvironment(
      game, seed, env_lib.AtariOptions(noop_max=0, **options))
  noop = env.action_names.index("NOOP")
  rng = np.random.default_rng(seed)
  scores = np.zeros(num_episodes, np.float64)
  lengths = np.zeros(num_episodes, np.int64)
  noops = rng.integers(1, max_noops, endpoint=True, size=num_episodes)
  try:
    for episode in range(num_episodes):
      timestep = env.reset()
      for _ in range(noops[episode]):
        timestep = env.step(noop)
        if timestep.last():
          break
      if not timestep.last():
        timestep = timestep._replace(step_type=dm_env.StepType.FIRST,
                                     reward=None, discount=None)
      while not timestep.last():
        timestep = env.step(policy(timestep))
      scores[episode] = env.episode_return
      lengths[episode] = env.episode_length
  finally:
    env.close()
  return EvaluationResult(mean_score=float(scores.mean()), scores=scores,
                          lengths=lengths, noops=noops.astype(np.int64))


class NoopStarts:
  """The protocol above for a batched environment (an `envs.BatchedEnv`).

  Wraps an `env_lib.AtariBatchedEnv` made with `noop_max=0` and
  `life_loss_terminal=False` (an episode is a whole game). Every game starts
  with a uniform number of NOOP agent steps in [1, max_noops], played in
  place of the agent's actions; `done` is True at the first observation the
  agent acts on (and where the environment starts a game), so a recurrent
  policy starts afresh there. `episode_return` is the environment's: the
  unclipped score of each finished game, no-op rewards included.
  """

  def __init__(self, env: env_lib.AtariBatchedEnv, max_noops: int = 30,
               seed: int = 0):
    if max_noops < 1:
      raise ValueError(f"max_noops must be >= 1 (30 in the paper), got "
                       f"{max_noops}.")
    if env.options.noop_max or env.options.life_loss_terminal:
      raise ValueError("NoopStarts needs an environment made with "
                       "noop_max=0 and life_loss_terminal=False.")
    self._env = env
    self._noop = env.action_names.index("NOOP")
    self._max_noops = int(max_noops)
    self._rng = np.random.default_rng(seed)
    self._left = np.zeros(env.num_envs, np.int64)
    self.num_envs = env.num_envs
    self.num_actions = env.num_actions
    self.action_names = env.action_names
    self.observation_spec = env.observation_spec
    self.frame_stack = env.frame_stack

  def _draw(self, count: int) -> np.ndarray:
    return self._rng.integers(1, self._max_noops, endpoint=True, size=count)

  def reset(self) -> envs.EnvOutput:
    self._left[:] = self._draw(self.num_envs)
    return self._env.reset()

  def render(self) -> np.ndarray:
    return self._env.render()

  def step(self, actions: np.ndarray) -> envs.EnvOutput:
    in_noops = self._left > 0
    actions = np.where(in_noops, self._noop, np.asarray(actions))
    output = self._env.step(actions.astype(np.int32))
    self._left[in_noops] -= 1
    started = in_noops & (self._left == 0)
    over = ~np.isnan(output.episode_return)
    self._left[over] = self._draw(int(over.sum()))
    return output._replace(done=output.done | started)

  def close(self) -> None:
    self._env.close()
