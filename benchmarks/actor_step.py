"""The actor's step: its policy called as a concrete function (what
`Actor` does) against the polymorphic `tf.function`, which matches the
arguments to a trace at every call.

Two real `Actor`s in one process (Pong, `--envs` environments each, the
launcher's actor network at `--precision`, one TF thread, no learner),
unrolling in turn, `--unrolls` unrolls per round for `--rounds` rounds:
one calls the concrete function, the other the `tf.function`. Prints
frames per second of each (medians over rounds) and their ratio. Run it on
a quiet machine (it is a speed figure).

  python benchmarks/actor_step.py [--envs 16] [--rounds 6] [--unrolls 10]
      [--precision float32,bfloat16]
"""

import argparse
import statistics
import time

from impala_tf.runtime import cpu
from impala_tf.runtime import tf_startup

FRAMES_PER_STEP = 4


def _measure(precision: str, args):
  tf = tf_startup.import_tensorflow(without_keras=True)
  from impala_tf.acting import actor as actor_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.acting import actor_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.config import experiment  # pylint: disable=g-import-not-at-top
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  del tf
  exp = experiment.build("atari57", ["pong"],
                         config=presets.ATARI.replace(precision=precision),
                         envs_per_actor=args.envs)
  actors = {}
  for name in ("concrete function", "tf.function"):
    actor = actor_lib.Actor(exp.make_env(0, seed=0),
                            actor_loop.build_actor_network(exp),
                            exp.config.unroll_length)
    if name == "tf.function":
      # Every step then goes through the polymorphic function again.
      policy = actor.policy._policy  # pylint: disable=protected-access
      policy.get_concrete_function = (
          lambda *unused_args, _f=policy, **unused_kwargs: _f)
    for _ in range(3):  # Traces, warms the environments up.
      actor.unroll()
    actors[name] = actor
  frames = args.unrolls * exp.config.unroll_length * args.envs * (
      FRAMES_PER_STEP)
  rates = {name: [] for name in actors}
  for _ in range(args.rounds):
    for name, actor in actors.items():
      start = time.perf_counter()
      for _ in range(args.unrolls):
        actor.unroll()
      rates[name].append(frames / (time.perf_counter() - start))
  medians = {name: statistics.median(r) for name, r in rates.items()}
  for name, rate in medians.items():
    runs = ", ".join(f"{r:,.0f}" for r in rates[name])
    print(f"{precision}, {name}: {rate:,.0f} f/s (rounds: {runs})")
  print(f"{precision}: concrete function / tf.function = "
        f"{medians['concrete function'] / medians['tf.function']:.2f}x")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--envs", type=int, default=16)
  parser.add_argument("--rounds", type=int, default=6)
  parser.add_argument("--unrolls", type=int, default=10)
  parser.add_argument("--precision", default="float32",
                      help="comma-separated --precision settings")
  args = parser.parse_args()
  tf = tf_startup.import_tensorflow(without_keras=True)
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  print(f"CPU: {cpu.read_cpu_info().describe()}; Pong, {args.envs} "
        f"environments per actor, one TF thread; frames = 4 x agent steps; "
        f"medians of {args.rounds} rounds of {args.unrolls} unrolls")
  for precision in args.precision.split(","):
    _measure(precision, args)


if __name__ == "__main__":
  main()
