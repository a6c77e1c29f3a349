"""DeepMind Lab on every DMLab-30 level: load time and agent steps/s on one core.

For each level, in a fresh process pinned to one CPU core (the engine can
end its process, and a first `Lab` pays for loading the engine itself):

* cold load: `dmlab30.make(level)` and its first `reset()` with an empty
  level cache (`--level_cache_dir`), so the level's map is generated;
* cached load: a second `Lab` of the level with the same seed and cache, so
  the map is copied from the cache instead;
* agent steps/s: `--steps` steps of the training adapter (4 engine frames
  each, the frame and instruction read every step, episode ends and their
  resets included) with uniformly random actions of the 9-action set.

Frames are 4 per agent step. Levels the engine cannot load are listed with
why (`dmlab30.availability`).

  python benchmarks/dmlab_levels.py [--levels all|name,...] [--steps 500]
      [--cpu 0]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from dmlab30 import availability
from dmlab30 import levels as levels_lib
from impala_tf.runtime import cpu


def _child(args):
  """One level in this process; prints one JSON line."""
  os.sched_setaffinity(0, {args.cpu})
  import dmlab30  # pylint: disable=g-import-not-at-top
  cache = tempfile.mkdtemp(prefix="dmlab_level_cache_")
  try:
    start = time.perf_counter()
    env = dmlab30.make(args.child, seed=1, level_cache_dir=cache)
    env.reset()
    cold_s = time.perf_counter() - start
    env.close()
    start = time.perf_counter()
    env = dmlab30.make(args.child, seed=1, level_cache_dir=cache)
    env.reset()
    cached_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    episodes = 0
    start = time.perf_counter()
    for action in rng.integers(0, dmlab30.NUM_ACTIONS, args.steps):
      episodes += env.step(int(action)).last()
    steps_per_s = args.steps / (time.perf_counter() - start)
    env.close()
  finally:
    shutil.rmtree(cache)
  print(json.dumps({"cold_s": cold_s, "cached_s": cached_s,
                    "steps_per_s": steps_per_s, "episode_ends": int(episodes)}))


def _measure(level, args):
  done = subprocess.run(
      [sys.executable, __file__, f"--child={level}", f"--steps={args.steps}",
       f"--cpu={args.cpu}"], stdin=subprocess.DEVNULL,
      capture_output=True, text=True, timeout=600, check=False)
  if done.returncode == 0:
    return json.loads(done.stdout.strip().splitlines()[-1])
  return {"error": availability.reason_from_output(
      done.stdout + done.stderr, done.returncode)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--levels", default="all")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--cpu", type=int, default=0,
                      help="the core every level runs on")
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    _child(args)
    return
  levels = (levels_lib.LEVELS if args.levels == "all"
            else [levels_lib.canonical_name(n) for n in args.levels.split(",")])
  print(f"CPU: {cpu.read_cpu_info().describe()}; one core (cpu "
        f"{args.cpu}) per level; {args.steps} agent steps of random actions; "
        "frames = 4 x agent steps", flush=True)
  print("\n| level | load, cold (s) | load, cached (s) | agent steps/s | "
        "frames/s |\n| --- | ---: | ---: | ---: | ---: |", flush=True)
  rates, failed = [], {}
  for level in levels:
    result = _measure(level, args)
    if "error" in result:
      failed[level] = result["error"]
      print(f"| {level} | - | - | - | - |", flush=True)
      continue
    rates.append(result["steps_per_s"])
    print(f"| {level} | {result['cold_s']:.2f} | {result['cached_s']:.2f} | "
          f"{result['steps_per_s']:,.0f} | {4 * result['steps_per_s']:,.0f} |",
          flush=True)
  if rates:
    print(f"\n{len(rates)} of {len(levels)} levels run: agent steps/s median "
          f"{statistics.median(rates):,.0f}, min {min(rates):,.0f}, max "
          f"{max(rates):,.0f}; harmonic mean (one environment per level, "
          f"stepped in turn) {len(rates) / sum(1 / r for r in rates):,.0f}")
  for level, why in failed.items():
    print(f"{level}: {why}")


if __name__ == "__main__":
  main()
