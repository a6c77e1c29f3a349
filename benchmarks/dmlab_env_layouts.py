"""Where an actor's DeepMind Lab environments run: in the actor's process or
each in a process of its own.

An actor steps `--envs` environments of `--level` in lockstep, on one CPU
core (an actor's share of a 2-core machine), two ways, alternating:

* in process: `impala_tf.acting.envs.DmEnvBatch`, what actors do (the engine's
  libraries bound to each other, `dmlab30.engine.bind_engine_libraries`);
* processes: each environment in a process of its own without TensorFlow
  (the paper's code ran each DMLab environment in its own process), the
  actor sending actions and receiving observations through pipes.

Prints agent steps/s (episode resets included) and the proportional memory
(PSS) of the actor and its environment processes, medians over `--repeats`.

  python benchmarks/dmlab_env_layouts.py [--level rooms_collect_good_objects]
      [--envs 4] [--seconds 30] [--repeats 3] [--cpu 0]
"""

import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np

from impala_tf.runtime import cpu


def _serve(connection, level, seed):
  """An environment process: steps its environment on request."""
  import dmlab30  # pylint: disable=g-import-not-at-top
  env = dmlab30.make(level, seed=seed)
  connection.send(env.reset().observation)
  while True:
    action = connection.recv()
    if action is None:
      env.close()
      return
    timestep = env.step(action)
    if timestep.last():
      timestep = env.reset()
    connection.send(timestep.observation)


class _ProcessEnvs:
  """Environments each in a process of their own, stepped in lockstep."""

  def __init__(self, level, num_envs, cpu_index):
    context = multiprocessing.get_context("spawn")
    self._connections, self.processes = [], []
    for seed in range(num_envs):
      ours, theirs = context.Pipe()
      process = context.Process(target=_serve, args=(theirs, level, seed),
                                daemon=True)
      process.start()
      os.sched_setaffinity(process.pid, {cpu_index})
      self._connections.append(ours)
      self.processes.append(process)
    for connection in self._connections:
      connection.recv()

  def step(self, actions):
    for connection, action in zip(self._connections, actions):
      connection.send(int(action))
    return [connection.recv() for connection in self._connections]

  def close(self):
    for connection in self._connections:
      connection.send(None)
    for process in self.processes:
      process.join(timeout=30)


def _pss_mib(pids):
  total = 0
  for pid in pids:
    with open(f"/proc/{pid}/smaps_rollup") as f:
      for line in f:
        if line.startswith("Pss:"):
          total += int(line.split()[1])
  return total / 1024


def _measure(layout, args):
  import dmlab30  # pylint: disable=g-import-not-at-top
  from impala_tf.acting import envs  # pylint: disable=g-import-not-at-top
  if layout == "in process":
    batch = envs.DmEnvBatch(
        [dmlab30.make(args.level, seed=seed) for seed in range(args.envs)],
        dmlab30.NUM_ACTIONS)
    batch.reset()
    step, pids, close = batch.step, [os.getpid()], batch.close
  else:
    batch = _ProcessEnvs(args.level, args.envs, args.cpu)
    step, close = batch.step, batch.close
    pids = [os.getpid()] + [p.pid for p in batch.processes]
  rng = np.random.default_rng(0)
  steps, start = 0, time.perf_counter()
  while time.perf_counter() - start < args.seconds:
    step(rng.integers(0, dmlab30.NUM_ACTIONS, args.envs).astype(np.int32))
    steps += args.envs
  rate = steps / (time.perf_counter() - start)
  memory = _pss_mib(pids)
  close()
  return rate, memory


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--level", default="rooms_collect_good_objects")
  parser.add_argument("--envs", type=int, default=4)
  parser.add_argument("--seconds", type=float, default=30)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--cpu", type=int, default=0)
  args = parser.parse_args()
  os.sched_setaffinity(0, {args.cpu})
  # The actor's process imports TensorFlow, as an actor does.
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  tf_startup.import_tensorflow(without_keras=True)
  print(f"CPU: {cpu.read_cpu_info().describe()}; {args.envs} environments "
        f"of {args.level} on one core; {args.seconds:g} s each, "
        f"{args.repeats} alternating repeats; medians", flush=True)
  layouts = ("in process", "processes")
  results = {layout: [] for layout in layouts}
  for _ in range(args.repeats):
    for layout in layouts:
      results[layout].append(_measure(layout, args))
  for layout in layouts:
    rates = [r for r, _ in results[layout]]
    print(f"{layout}: {statistics.median(rates):,.0f} agent steps/s "
          f"(runs {', '.join(f'{r:,.0f}' for r in rates)}), PSS "
          f"{statistics.median(m for _, m in results[layout]):,.0f} MiB")
  first = statistics.median(r for r, _ in results[layouts[0]])
  second = statistics.median(r for r, _ in results[layouts[1]])
  print(f"processes over in process: {second / first:.2f}x")


if __name__ == "__main__":
  main()
