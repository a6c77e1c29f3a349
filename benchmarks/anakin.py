"""Anakin mode against the actor-learner modes, on the same machine.

Runs `python -m impala_tf.launch` on `--level` (catch, or the gymnasium
suite's CartPole-v1) in anakin mode and in the threads and processes modes,
alternating, `--repeats` times each, every run for `--frames` frames in a
fresh run directory, and reads its progress lines (one a second) as they
come, stamped with the wall-clock time since the command started. For each
mode it prints medians over the repeats of:

* frames/s: the steady rate, frames between the first and the last
  progress line (four a second) over the time between them (start-up and, in anakin mode,
  tracing and compilation come before the first line);
* start: seconds from the command to its first progress line (TensorFlow's
  import, the processes' start, anakin's compilation);
* solved: seconds from the command until the mean return of the last 100
  games first reached `--solved` (compilation and start-up included), and
  at how many frames;

then anakin's frames/s and time to solve against the processes mode's.
Several anakin settings (`--anakin_variants`, separated by ';') each run
as a mode of their own. Use a quiet machine: every mode shares its cores.

With `--agents N`, it instead trains N agents (seeds 0..N-1) for
`--frames` each, alternating `--repeats` times between one process and
one compiled program for all with the agents vectorised (`python -m
impala_tf.anakin.together --vectorise`: stacked weights, wider kernels),
the same with each agent's ops side by side (without `--vectorise`), and N
anakin launches one after another, and prints agents per minute of wall
clock (TensorFlow's start, tracing and compilation included) for each.

  python benchmarks/anakin.py [--level catch] [--frames 256000]
      [--repeats 3] [--solved 0.9]
      [--anakin_variants '--anakin_xla;--noanakin_xla']
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from impala_tf.runtime import cpu

LEVELS = {"catch": ["--suite=catch"],
          "CartPole-v1": ["--suite=gymnasium", "--levels=CartPole-v1"]}
LINE = re.compile(r"^frames ([\d,]+) \|.*?\| (?:return ([-\d.]+)|no games)")
# The last line: its frames and the level's mean return (for "solved"
# only: it comes after the policy's export).
DONE = re.compile(r"^Done: ([\d,]+) frames.*?episodes: \S+ ([-\d.]+) \(")


def run_once(level: str, mode_flags: list[str], frames: int, solved: float,
             workdir: str) -> dict:
  """One launch; its figures (module docstring)."""
  logdir = tempfile.mkdtemp(dir=workdir)
  command = [sys.executable, "-m", "impala_tf.launch", *LEVELS[level],
             f"--total_frames={frames}", "--log_interval_s=0.25",
             f"--logdir={logdir}", *mode_flags]
  start = time.time()
  process = subprocess.Popen(command, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
  points, solved_at = [], None
  tail = []
  for line in process.stdout:
    now = time.time() - start
    tail = (tail + [line.rstrip()])[-5:]
    match = LINE.match(line)
    done = DONE.match(line)
    if not (match or done):
      continue
    count = int((match or done).group(1).replace(",", ""))
    if match:
      points.append((now, count))
    match = match or done
    if (solved_at is None and match.group(2) is not None
        and float(match.group(2)) >= solved):
      solved_at = (now, count)
  if process.wait() != 0 or len(points) < 2:
    raise RuntimeError(f"{' '.join(command)} ended with code "
                       f"{process.returncode} after {len(points)} progress "
                       "lines: " + " / ".join(tail))
  (t1, f1), (t2, f2) = points[0], points[-1]
  return {"fps": (f2 - f1) / (t2 - t1), "start_s": points[0][0],
          "solved_s": solved_at[0] if solved_at else float("nan"),
          "solved_frames": solved_at[1] if solved_at else float("nan")}


AGENT_WAYS = ("vectorised", "side by side", "one by one")


def agents_per_minute(level: str, agents: int, frames: int, way: str,
                      workdir: str) -> float:
  """N agents trained in one of `AGENT_WAYS`; agents per wall-clock
  minute, from the first command's start to the last one's end."""
  import json  # pylint: disable=g-import-not-at-top
  base = tempfile.mkdtemp(dir=workdir)
  runs = [[*LEVELS[level], "--run_mode=anakin", f"--seed={seed}",
           f"--total_frames={frames}", f"--logdir={base}/seed{seed}"]
          for seed in range(agents)]
  start = time.time()
  if way != "one by one":
    path = os.path.join(base, "runs.json")
    with open(path, "w") as f:
      json.dump(runs, f)
    commands = [[sys.executable, "-m", "impala_tf.anakin.together",
                 *(["--vectorise"] if way == "vectorised" else []), path]]
  else:
    commands = [[sys.executable, "-m", "impala_tf.launch", *run]
                for run in runs]
  for command in commands:
    subprocess.run(command, check=True, capture_output=True)
  return agents / ((time.time() - start) / 60)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--level", default="catch", choices=sorted(LEVELS))
  parser.add_argument("--frames", type=int, default=256_000)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--solved", type=float, default=None,
                      help="Default 0.9 for catch, 475 for CartPole-v1.")
  parser.add_argument("--anakin_variants", default="",
                      help="Anakin settings separated by ';', e.g. "
                      "'--anakin_xla;--noanakin_xla'.")
  parser.add_argument("--modes", default="anakin,threads,processes")
  parser.add_argument("--agents", type=int, default=0)
  args = parser.parse_args()
  if args.agents:
    print(f"CPU: {cpu.read_cpu_info().describe()}; {args.agents} agents on "
          f"{args.level}, {args.frames:,} frames each; medians of "
          f"{args.repeats}, alternating", flush=True)
    rates = {way: [] for way in AGENT_WAYS}
    with tempfile.TemporaryDirectory() as workdir:
      for _ in range(args.repeats):
        for way in AGENT_WAYS:
          rates[way].append(agents_per_minute(
              args.level, args.agents, args.frames, way, workdir))
          print(f"  {way}: {rates[way][-1]:.2f} agents/min", flush=True)
    medians = {way: statistics.median(rates[way]) for way in AGENT_WAYS}
    alone = medians["one by one"]
    print(", ".join(f"{way} {rate:.2f} agents/min ({rate / alone:.2f}x)"
                    for way, rate in medians.items()))
    return
  solved = args.solved if args.solved is not None else (
      0.9 if args.level == "catch" else 475.0)
  modes = {}
  for mode in args.modes.split(","):
    if mode == "anakin":
      for variant in args.anakin_variants.split(";"):
        name = f"anakin {variant}".strip()
        modes[name] = ["--run_mode=anakin", *variant.split()]
    else:
      modes[mode] = [f"--run_mode={mode}"]
  print(f"CPU: {cpu.read_cpu_info().describe()}; {args.level}, "
        f"{args.frames:,} frames per run, solved = mean of the last 100 "
        f"games >= {solved:g}; medians of {args.repeats}, alternating",
        flush=True)
  results = {name: [] for name in modes}
  with tempfile.TemporaryDirectory() as workdir:
    for repeat in range(args.repeats):
      for name, flags in modes.items():
        result = run_once(args.level, flags, args.frames, solved, workdir)
        results[name].append(result)
        print(f"  run {repeat + 1} {name}: {result['fps']:,.0f} f/s, first "
              f"line at {result['start_s']:.1f} s, solved at "
              f"{result['solved_s']:.1f} s ({result['solved_frames']:,} "
              "frames)", flush=True)
  medians = {name: {key: statistics.median(r[key] for r in runs)
                    for key in runs[0]} for name, runs in results.items()}
  for name, m in medians.items():
    print(f"{name:32s} {m['fps']:>10,.0f} f/s | first line "
          f"{m['start_s']:5.1f} s | solved {m['solved_s']:6.1f} s at "
          f"{m['solved_frames']:,.0f} frames")
  if "processes" in medians:
    base = medians["processes"]
    for name, m in medians.items():
      if name.startswith("anakin"):
        print(f"{name}: {m['fps'] / base['fps']:.1f}x the processes mode's "
              f"frames/s; solved in {m['solved_s'] / base['solved_s']:.2f}x "
              "its wall-clock time")


if __name__ == "__main__":
  main()
