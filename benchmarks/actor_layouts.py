"""Actor-side throughput of two layouts on the same cores: actor processes
against actor threads in one process.

Each actor is the real `Actor` (Pong, its own environments and its own
shallow network, unrolls of 20 steps, no learner: weights stay as
initialised). Layouts, alternating for `--rounds`:

  processes: `--actors` processes, one actor each, one TF thread each (the
             launcher's default layout, one TF runtime per actor)
  threads:   one process with `--actors` Python threads, one actor each
             (one TF runtime for all; `--tf_threads` intra-op threads)

Prints frames per second summed over the actors, the median over rounds,
and threads / processes. Run it on a quiet machine (it is a speed figure).

  python benchmarks/actor_layouts.py [--actors 2] [--envs 16] [--seconds 20]
      [--rounds 2] [--tf_threads 1]
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time


def _child(num_actors: int, envs: int, tf_threads: int, seconds: float):
  """Runs `num_actors` actor threads in this process; prints frames/s."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
  tf.config.threading.set_inter_op_parallelism_threads(tf_threads)
  from atari57 import env as atari_env  # pylint: disable=g-import-not-at-top
  from impala_tf.acting import actor as actor_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import networks  # pylint: disable=g-import-not-at-top

  actors = []
  for index in range(num_actors):
    env = atari_env.make_batched("pong", envs, seed=index, num_threads=1)
    network = networks.ImpalaNetwork(env.num_actions, "shallow",
                                     use_lstm=False)
    actor = actor_lib.Actor(env, network, 20, seed=index, actor_id=index)
    actor.unroll()  # Traces the policy step before the clock starts.
    actors.append(actor)
  unrolls = [0] * num_actors
  deadline = time.monotonic() + seconds

  def loop(index):
    while time.monotonic() < deadline:
      actors[index].unroll()
      unrolls[index] += 1

  start = time.monotonic()
  threads = [threading.Thread(target=loop, args=(i,))
             for i in range(num_actors)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  elapsed = time.monotonic() - start
  frames = sum(unrolls) * 20 * envs * 4  # 4 frames per agent step.
  for actor in actors:
    actor.env.close()
  print(f"{frames / elapsed:.1f}")


def _run(num_actors: int, envs: int, tf_threads: int, seconds: float):
  cmd = [sys.executable, __file__, "--child", str(num_actors),
         "--envs", str(envs), "--tf_threads", str(tf_threads),
         "--seconds", str(seconds)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def _result(process) -> float:
  out, _ = process.communicate()
  if process.returncode != 0:
    raise RuntimeError(f"a benchmark child failed (exit {process.returncode})")
  return float(out.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--actors", type=int, default=2)
  parser.add_argument("--envs", type=int, default=16)
  parser.add_argument("--seconds", type=float, default=20)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--tf_threads", type=int, default=1,
                      help="TF threads of the one process of 'threads'.")
  parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    _child(args.child, args.envs, args.tf_threads, args.seconds)
    return
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  print(f"CPU: {cpu.read_cpu_info().describe()}; {args.actors} actors x "
        f"{args.envs} Pong environments, {args.seconds:g} s per layout")
  results = {"processes": [], "threads": []}
  for round_index in range(args.rounds):
    children = [_run(1, args.envs, 1, args.seconds)
                for _ in range(args.actors)]
    results["processes"].append(sum(_result(c) for c in children))
    results["threads"].append(
        _result(_run(args.actors, args.envs, args.tf_threads, args.seconds)))
    print(f"round {round_index + 1}: processes "
          f"{results['processes'][-1]:,.0f} f/s, threads "
          f"{results['threads'][-1]:,.0f} f/s")
  processes = statistics.median(results["processes"])
  threads = statistics.median(results["threads"])
  print(f"median: processes {processes:,.0f} f/s, threads {threads:,.0f} "
        f"f/s, threads / processes {threads / processes:.2f}x")


if __name__ == "__main__":
  main()
