"""End-to-end throughput of the launcher on Pong, next to its three ceilings.

For each torso (shallow, deep) it measures, in this run on this machine:

* environments alone: ale-py's vector env (through `atari57.make_batched`)
  stepping as many Pong games as all actors together, random actions;
* batched inference alone: the actor's policy step at the actor's batch
  (one environment per row), on this process's CPU;
* learner update alone: `Learner.update` on a random batch (T=20, B=32);

and the shared-machine bound 1 / (sum of 1 / ceiling), the most the three
could give together on the cores each ceiling had to itself; then runs
`python -m impala_tf.launch` (learner + actor processes, the
default local mode) for `--seconds`, reads its progress lines (frames/s,
queue fill, share of time the learner waited for data) and samples the peak
resident memory (VmHWM) of every process. Frames are 4 per agent step.
Prints medians; the machine is shared and noisy, so compare ratios.

  python benchmarks/end_to_end.py [--seconds 120] [--torsos shallow,deep]
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

import atari57
from impala_tf import actor as actor_lib
from impala_tf import experiment as experiment_lib
from impala_tf import learner as learner_lib
from impala_tf import presets
from impala_tf import trajectory
from impala_tf.testing import trajectories

FRAMES_PER_STEP = 4


def env_ceiling(num_envs, seconds):
  env = atari57.make_batched("pong", num_envs, seed=0)
  env.reset()
  rng = np.random.default_rng(0)
  steps, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    env.step(rng.integers(0, env.num_actions, num_envs).astype(np.int32))
    steps += num_envs
  elapsed = time.perf_counter() - start
  env.close()
  return steps * FRAMES_PER_STEP / elapsed


def inference_ceiling(exp, batch, seconds):
  net = exp.make_network()
  env = atari57.make_batched("pong", batch, seed=0)
  act = actor_lib.Actor(env, net, exp.config.unroll_length)
  out = env.reset()
  state = net.initial_state(batch)
  prev = np.zeros(batch, np.int32)
  act._act(prev, out, state)  # pylint: disable=protected-access  # compile
  steps, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    act._act(prev, out, state)  # pylint: disable=protected-access
    steps += batch
  elapsed = time.perf_counter() - start
  env.close()
  return steps * FRAMES_PER_STEP / elapsed


def learner_ceiling(exp, seconds):
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec)
  batch = trajectory.restore_frames(trajectories.random_batch(
      exp.trajectory_specs(), exp.num_actions, exp.config.batch_size,
      done_prob=0.0))
  learner.update(batch)  # compile
  updates, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    learner.update(batch)["total_loss"].numpy()
    updates += 1
  elapsed = time.perf_counter() - start
  return updates * exp.config.frames_per_update / elapsed


def peak_rss_by_role(marker):
  """{role: [VmHWM MiB, ...]} of processes whose cmdline contains marker."""
  roles = {}
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open(f"/proc/{entry}/cmdline", "rb") as f:
        cmdline = f.read().decode(errors="replace")
      if marker not in cmdline or "impala_tf.launch" not in cmdline:
        continue
      with open(f"/proc/{entry}/status") as f:
        hwm = next(int(line.split()[1]) for line in f
                   if line.startswith("VmHWM"))
    except (OSError, StopIteration):
      continue
    role = ("learner" if "--job=learner" in cmdline else
            "actor" if "--job=actor" in cmdline else "launcher")
    roles.setdefault(role, []).append(hwm / 1024)
  return roles


def end_to_end(torso, num_actors, envs_per_actor, seconds, warmup_s,
               launch_args=()):
  logdir = tempfile.mkdtemp(prefix="impala_tf_e2e_")
  proc = subprocess.Popen(
      [sys.executable, "-m", "impala_tf.launch", f"--torso={torso}",
       f"--num_actors={num_actors}", f"--envs_per_actor={envs_per_actor}",
       "--total_frames=1000000000", "--log_interval_s=5",
       f"--logdir={logdir}", *launch_args],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      start_new_session=True)
  lines = []
  reader = threading.Thread(
      target=lambda: lines.extend(l.rstrip() for l in proc.stdout),
      daemon=True)
  reader.start()
  pattern = re.compile(r"^frames [\d,]+ \| ([\d,]+) f/s .* queue (\d+)% \| "
                       r"learner waits (\d+)%")
  peaks = {}

  def sample_memory():
    for role, values in peak_rss_by_role(logdir).items():
      peaks[role] = max([peaks.get(role, 0.0)] + values)

  # Start the clock at the first progress line (after TF start-up).
  deadline = time.monotonic() + 180
  while (not any(pattern.search(l) for l in list(lines)) and
         time.monotonic() < deadline and proc.poll() is None):
    sample_memory()
    time.sleep(1)
  end = time.monotonic() + warmup_s + seconds
  while time.monotonic() < end and proc.poll() is None:
    sample_memory()
    time.sleep(2)
  os.killpg(proc.pid, signal.SIGTERM)
  proc.wait(timeout=30)
  reader.join(timeout=5)
  progress = [m for m in map(pattern.search, lines) if m]
  skip = max(1, int(warmup_s / 5))
  measured = progress[skip:] or progress
  if not measured:
    raise RuntimeError("The launcher printed no progress:\n" +
                       "\n".join(lines[-30:]))
  fps = statistics.median(float(m.group(1).replace(",", ""))
                          for m in measured)
  fill = statistics.median(int(m.group(2)) for m in measured)
  wait = statistics.median(int(m.group(3)) for m in measured)
  return fps, fill, wait, peaks


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seconds", type=float, default=120)
  parser.add_argument("--warmup_s", type=float, default=30)
  parser.add_argument("--ceiling_s", type=float, default=15)
  parser.add_argument("--torsos", default="shallow,deep")
  parser.add_argument("--num_actors", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--envs_per_actor", type=int, default=16)
  parser.add_argument("--launch_args", default="",
                      help="More launcher flags, e.g. '--actor_threads=0'.")
  parser.add_argument("--skip_ceilings", action="store_true",
                      help="Only the end-to-end run (to compare settings).")
  args = parser.parse_args()

  print(f"TF {tf.__version__}, {os.cpu_count()} CPUs; Pong, "
        f"{args.num_actors} actors x {args.envs_per_actor} envs; frames = 4 "
        "x agent steps; medians")
  for torso in args.torsos.split(","):
    exp = experiment_lib.build(
        "atari57", ["pong"], presets.ATARI.replace(torso=torso),
        envs_per_actor=args.envs_per_actor)
    fps, fill, wait, peaks = end_to_end(torso, args.num_actors,
                                        args.envs_per_actor, args.seconds,
                                        args.warmup_s,
                                        args.launch_args.split())
    if args.skip_ceilings:
      print(f"\n{torso} {args.launch_args}: end-to-end {fps:,.0f} f/s, "
            f"queue {fill}%, learner waiting {wait}%")
      continue
    envs = env_ceiling(args.num_actors * args.envs_per_actor, args.ceiling_s)
    inference = inference_ceiling(exp, args.envs_per_actor, args.ceiling_s)
    learn = learner_ceiling(exp, args.ceiling_s)
    smallest = min(envs, inference, learn)
    # Each ceiling had both cores; end to end, the three share them, so
    # with perfect overlap and no other cost the per-frame times add up.
    shared = 1 / (1 / envs + 1 / inference + 1 / learn)
    print(f"\n{torso}: end-to-end {fps:,.0f} f/s = {fps / smallest:.0%} of the "
          f"smallest ceiling, {fps / shared:.0%} of the shared-machine bound "
          f"{shared:,.0f} f/s")
    print(f"  ceilings: environments {envs:,.0f} f/s, inference "
          f"{inference:,.0f} f/s, learner {learn:,.0f} f/s")
    print(f"  median queue fill {fill}%, learner waiting {wait}% of the time")
    print("  peak resident memory: " + ", ".join(
        f"{role} {value:,.0f} MiB" for role, value in
        sorted(peaks.items())))
    sys.stdout.flush()


if __name__ == "__main__":
  main()
