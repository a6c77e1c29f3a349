"""End-to-end throughput of the launcher, next to its three ceilings.

On `--suite` and `--levels` (default Pong; `--suite=dmlab30
--levels=rooms_collect_good_objects` for DeepMind Lab, with the suite's
preset for those levels), for each torso (shallow, deep) it measures, in
this run on this machine:

* environments alone: the suite's training environments (ale-py's vector
  env for Atari, DeepMind Lab's engine for DMLab-30), every actor's in a
  process of its own as in a run, stepped at once with random actions;
* batched inference alone: the actor's policy step at the actor's batch
  (one environment per row) with one TF thread, every actor's in a process
  of its own at once, as actors run;
* learner update alone: `Learner.update` on a random batch of the preset's
  shape (Atari: T=20, B=32; DMLab-30: T=100, B=32);

and the shared-machine bound 1 / (sum of 1 / ceiling), the most the three
could give together on the cores each ceiling had to itself; then runs
`python -m impala_tf.launch` (learner + actor processes, the
default local mode) for `--seconds`, reads its progress lines (frames/s,
queue fill, share of time the learner waited for data, mean policy lag
in updates) and samples, every
second, the peak resident memory (VmHWM) of every process and the whole
run's proportional memory (PSS, summed over the launcher, the template
the others are forked from, the learner and the actors; shared pages
counted once), printing its peak and, at that
peak, each role's PSS and private (anonymous) memory. PSS divides shared
pages among every process that maps them, so other TF processes on the
machine lower it: measure memory with nothing else running. Frames are 4
per agent step.
Prints medians; the machine is shared and noisy, so compare ratios.

With `--inference actor,central` each setting also runs with the policy
on every actor and on the learner's inference server (`--inference`); a
central run also prints the server's mean batch (environments) and the
mean time from a request to its batch's compute.

With several `--onednn` settings (e.g. `auto,off`) or `--precision`
settings (`float32,bfloat16`), every combination runs `--repeats` times,
alternating, each ceiling in a fresh process with the oneDNN setting its
role gets (inference as an actor, the update as a learner), and each
combination's end-to-end speed over the first's is printed.

  python benchmarks/end_to_end.py [--seconds 120] [--torsos shallow,deep]
      [--onednn auto,off] [--precision float32,bfloat16] [--repeats 1]
      [--variants '--queue_capacity=64;'] [--suite atari57 --levels pong]
      [--inference actor,central]
      [--checkouts OLD_WORKTREE,NEW_WORKTREE]
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

import json

import numpy as np  # pylint: disable=g-import-not-at-top

from impala_tf.runtime import cpu
from impala_tf import launch_flags
from impala_tf.runtime import processes


def _experiment(args, torso, precision="float32"):
  """The experiment the launcher runs for `args`, with `torso` and
  `precision`: the launch command's own plan (`launch_flags`)."""
  argv = ["impala_tf.launch", f"--suite={args.suite}", f"--torso={torso}",
          f"--precision={precision}", f"--num_actors={args.num_actors}"]
  argv += [f"--levels={args.levels}"] if args.levels else []
  argv += ([f"--envs_per_actor={args.envs_per_actor}"]
           if args.envs_per_actor else [])
  return launch_flags.plan_from_argv(argv, environ={}).experiment


def _environments(exp, num_actors):
  """One batched environment holding what `num_actors` actors step: each
  actor's levels (`Experiment.level_ids`)."""
  level_ids = np.concatenate([exp.level_ids(a) for a in range(num_actors)])
  return exp.suite_object.make_train_env(exp.levels, level_ids, 0,
                                         exp.env_options)


def _steps_environments(exp, actor):
  """Actor `actor`'s environments, stepped with random actions: (setup,
  step) where `step()` returns the agent steps it took."""
  env = exp.make_env(actor)
  env.reset()
  rng = np.random.default_rng(actor)

  def step():
    env.step(rng.integers(0, env.num_actions, env.num_envs).astype(np.int32))
    return env.num_envs
  return env, step


def _steps_inference(exp, actor):
  """The actor's policy step on actor `actor`'s observations (one TF
  thread, as an actor runs with the default --actor_threads)."""
  from impala_tf.acting import actor as actor_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  tf = tf_startup.import_tensorflow()
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  net = exp.make_network()
  env = exp.make_env(actor)
  act = actor_lib.Actor(env, net, exp.config.unroll_length)
  out = env.reset()
  state = net.initial_state(env.num_envs)
  prev = np.zeros(env.num_envs, np.int32)
  act._act(prev, out, state)  # pylint: disable=protected-access  # compile

  def step():
    act._act(prev, out, state)  # pylint: disable=protected-access
    return env.num_envs
  return env, step


def _per_actor_child(args):
  """Child: one actor's part of a ceiling; says "ready" after its set-up,
  runs for `--ceiling_s` from "go" on stdin, prints JSON."""
  if args.child == "inference":
    cpu.configure_onednn(args.onednn, "actor", args.torsos)
  exp = _experiment(args, args.torsos, args.precision)
  make = _steps_inference if args.child == "inference" else (
      _steps_environments)
  env, step = make(exp, args.actor)
  print("ready", flush=True)
  sys.stdin.readline()
  steps, start = 0, time.perf_counter()
  while time.perf_counter() - start < args.ceiling_s:
    steps += step()
  elapsed = time.perf_counter() - start
  env.close()
  from impala_tf.runtime import cpu as cpu_lib  # pylint: disable=g-import-not-at-top
  print(json.dumps({"fps": steps * exp.config.frames_per_step / elapsed,
                    "onednn": cpu_lib.tf_onednn_enabled()}))


def per_actor_ceiling(kind, torso, setting, args):
  """Frames/s of every actor's environments ("environments") or policy
  steps ("inference") at once, each actor's in a process of its own as in
  a run: {"fps": the sum, "onednn": ...}. (DeepMind Lab's environments
  hold the GIL while they step, and an actor's TF runs on one thread.)"""
  onednn, precision = setting[:2]
  children = [subprocess.Popen(
      [sys.executable, __file__, f"--child={kind}", f"--actor={actor}",
       f"--torsos={torso}", f"--onednn={onednn}", f"--precision={precision}",
       f"--suite={args.suite}", f"--levels={args.levels}",
       f"--ceiling_s={args.ceiling_s}",
       *([f"--envs_per_actor={args.envs_per_actor}"]
         if args.envs_per_actor else [])],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for actor in range(args.num_actors)]
  for child in children:
    if child.stdout.readline().strip() != "ready":
      raise RuntimeError(f"A {kind} process did not start.")
  for child in children:
    child.stdin.write("go\n")
    child.stdin.flush()
  results = [json.loads(child.communicate(timeout=args.ceiling_s + 600)[0]
                        .strip().splitlines()[-1]) for child in children]
  return {"fps": sum(r["fps"] for r in results),
          "onednn": results[0]["onednn"]}


def learner_ceiling(exp, seconds):
  from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import trajectory  # pylint: disable=g-import-not-at-top
  from impala_tf.testing import trajectories  # pylint: disable=g-import-not-at-top
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


def _run_processes(marker):
  """{pid: command line} of the run's processes (the launcher's and the
  template the learner and actors are forked from) whose command line
  contains marker."""
  return {pid: cmdline for pid, cmdline in
          processes.find_processes(marker).items()
          if "impala_tf.launch" in cmdline or
          "impala_tf.runtime.template" in cmdline}


def _status_kib(path, *fields):
  """The kB figures of `fields` in a /proc status-like file, read in one
  pass, as a tuple (None if the process ended)."""
  try:
    with open(path) as f:
      found = {}
      for line in f:
        name = line.split(":", 1)[0]
        if name in fields:
          found[name] = int(line.split()[1])
  except OSError:
    return None
  if len(found) < len(fields):
    return None
  return tuple(found[field] for field in fields)


def _role(cmdline):
  return ("learner" if "--job=learner" in cmdline else
          "actor" if "--job=actor" in cmdline else
          "template" if "impala_tf.runtime.template" in cmdline else
          "launcher")


def run_memory_mib(marker):
  """{role: [PSS, private anonymous]} MiB summed over the run's processes
  of each role now; the run's PSS is the sum of the PSS column (shared
  pages, the libraries above all, are divided among the processes that map
  them, so other TF processes on the machine lower it)."""
  roles = {}
  for pid, cmdline in _run_processes(marker).items():
    memory = _status_kib(f"/proc/{pid}/smaps_rollup", "Pss", "Anonymous")
    if memory is None:
      continue
    pss, anon = memory
    totals = roles.setdefault(_role(cmdline), [0.0, 0.0])
    totals[0] += pss / 1024
    totals[1] += anon / 1024
  return roles


def peak_rss_by_role(marker):
  """{role: [VmHWM MiB, ...]} of processes whose cmdline contains marker."""
  roles = {}
  for pid, cmdline in _run_processes(marker).items():
    hwm = _status_kib(f"/proc/{pid}/status", "VmHWM")
    if hwm is None:
      continue
    roles.setdefault(_role(cmdline), []).append(hwm[0] / 1024)
  return roles


def end_to_end(torso, num_actors, envs_per_actor, seconds, warmup_s,
               launch_args=(), suite_args=(), checkout=None):
  logdir = tempfile.mkdtemp(prefix="impala_tf_e2e_")
  # NAME=VALUE words are the launcher's environment, the others its flags.
  env = dict(os.environ)
  env.update(a.split("=", 1) for a in launch_args if _is_env(a))
  if checkout:
    # That checkout's code: it comes first on the path of the launcher and
    # of every process the launcher starts.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [checkout, env.get("PYTHONPATH")]))
  proc = subprocess.Popen(
      [sys.executable, "-m", "impala_tf.launch", *suite_args,
       f"--torso={torso}", f"--num_actors={num_actors}",
       *([f"--envs_per_actor={envs_per_actor}"] if envs_per_actor else []),
       "--total_frames=1000000000", "--log_interval_s=5",
       f"--logdir={logdir}", *(a for a in launch_args if not _is_env(a))],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      start_new_session=True, env=env, cwd=checkout)
  lines = []
  reader = threading.Thread(
      target=lambda: lines.extend(l.rstrip() for l in proc.stdout),
      daemon=True)
  reader.start()
  pattern = re.compile(r"^frames [\d,]+ \| ([\d,]+) f/s .* queue (\d+)% \| "
                       r"learner waits (\d+)% \| lag ([\d.]+) \(max (\d+)\)")
  peaks = {}
  breakdown = {}  # By role, at the whole run's peak PSS.

  def sample_memory():
    for role, values in peak_rss_by_role(logdir).items():
      peaks[role] = max([peaks.get(role, 0.0)] + values)
    roles = run_memory_mib(logdir)
    whole = sum(pss for pss, _ in roles.values())
    if whole > peaks.get("whole run PSS", 0.0):
      peaks["whole run PSS"] = whole
      breakdown.clear()
      breakdown.update(roles)

  # Start the clock at the first progress line (after TF start-up).
  deadline = time.monotonic() + 180
  while (not any(pattern.search(l) for l in list(lines)) and
         time.monotonic() < deadline and proc.poll() is None):
    sample_memory()
    time.sleep(1)
  end = time.monotonic() + warmup_s + seconds
  while time.monotonic() < end and proc.poll() is None:
    sample_memory()
    time.sleep(1)
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
  peaks["lag"] = statistics.median(float(m.group(4)) for m in measured)
  # Central inference: the server's totals, said when the learner ends.
  served = [m for m in map(_SERVED.search, lines) if m]
  peaks["served"] = (tuple(float(served[-1].group(i)) for i in (1, 2, 3))
                     if served else None)
  peaks["max lag"] = max(int(m.group(5)) for m in measured)
  return fps, fill, wait, peaks, breakdown


_SERVED = re.compile(r"[Ii]nference: [\d,]+ batches of ([\d.]+) environments "
                     r".* ([\d.]+) ms from request to compute, ([\d.]+) ms "
                     r"per batch in the whole run")


def _is_env(word):
  return re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", word) is not None


def _child(args):
  """The learner's ceiling under the --onednn setting a learner gets and
  the --precision; prints JSON."""
  cpu.configure_onednn(args.onednn, "learner", args.torsos)
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  tf_startup.import_tensorflow()
  exp = _experiment(args, args.torsos, args.precision)
  value = learner_ceiling(exp, args.ceiling_s)
  print(json.dumps({"fps": value, "onednn": cpu.tf_onednn_enabled()}))


def _ceiling_in_child(kind, torso, setting, args):
  onednn, precision = setting[:2]
  out = subprocess.run(
      [sys.executable, __file__, f"--child={kind}", f"--torsos={torso}",
       f"--onednn={onednn}", f"--precision={precision}",
       f"--ceiling_s={args.ceiling_s}", f"--suite={args.suite}",
       f"--levels={args.levels}",
       *([f"--envs_per_actor={args.envs_per_actor}"]
         if args.envs_per_actor else [])],
      capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seconds", type=float, default=120)
  parser.add_argument("--warmup_s", type=float, default=30)
  parser.add_argument("--ceiling_s", type=float, default=15)
  parser.add_argument("--torsos", default="shallow,deep")
  parser.add_argument("--num_actors", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--envs_per_actor", type=int, default=None,
                      help="default: the suite's (16 for Atari, 4 for "
                      "DMLab-30)")
  parser.add_argument("--suite", default="atari57")
  parser.add_argument("--levels", default="",
                      help="comma-separated; default the suite's")
  parser.add_argument("--launch_args", default="",
                      help="More launcher flags, e.g. '--actor_threads=0'.")
  parser.add_argument("--skip_ceilings", action="store_true",
                      help="Only the end-to-end run (to compare settings).")
  parser.add_argument("--onednn", default="auto",
                      help="comma-separated --onednn settings to compare")
  parser.add_argument("--precision", default="float32",
                      help="comma-separated --precision settings to compare")
  parser.add_argument("--variants", default="",
                      help="Launcher flag sets to alternate, ';'-separated "
                      "(e.g. '--queue_capacity=64;' compares it with the "
                      "default); NAME=VALUE words set the launcher's "
                      "environment (e.g. 'MALLOC_ARENA_MAX=16').")
  parser.add_argument("--checkouts", default="",
                      help="comma-separated checkouts of this project (git "
                      "worktrees, say) whose code the launcher runs, "
                      "alternating: old against new")
  parser.add_argument("--inference", default="actor",
                      help="Comma-separated --inference settings (actor, "
                      "central), each run in turn.")
  parser.add_argument("--repeats", type=int, default=1,
                      help="end-to-end runs per setting, alternating")
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--actor", type=int, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child in ("environments", "inference"):
    _per_actor_child(args)
    return
  if args.child:
    _child(args)
    return

  variants = args.variants.split(";") if args.variants else [""]
  checkouts = args.checkouts.split(",") if args.checkouts else [None]
  settings = [(onednn, precision, variant.strip(), checkout, inference)
              for checkout in checkouts
              for onednn in args.onednn.split(",")
              for precision in args.precision.split(",")
              for variant in variants
              for inference in args.inference.split(",")]
  flags_of = {setting: " ".join(filter(None, (
      f"--onednn={setting[0]} --precision={setting[1]}",
      f"--inference={setting[4]}", setting[2])))
              for setting in settings}
  names = {setting: flags_of[setting] + (
      f" [code of {setting[3]}]" if setting[3] else "")
           for setting in settings}
  exp = _experiment(args, args.torsos.split(",")[0])
  suite_args = [f"--suite={args.suite}"] + (
      [f"--levels={args.levels}"] if args.levels else [])
  print(f"CPU: {cpu.read_cpu_info().describe()}; {args.suite} "
        f"{','.join(exp.levels)}, {args.num_actors} actors x "
        f"{exp.envs_per_actor} envs; "
        f"{'; '.join(names.values())}; frames = 4 x agent steps; medians",
        flush=True)
  for torso in args.torsos.split(","):
    runs = {setting: [] for setting in settings}
    for _ in range(args.repeats):
      for setting in settings:
        runs[setting].append(end_to_end(
            torso, args.num_actors, args.envs_per_actor, args.seconds,
            args.warmup_s,
            args.launch_args.split() + flags_of[setting].split(),
            suite_args, checkout=setting[3]))
    for setting in settings:
      fps = statistics.median(r[0] for r in runs[setting])
      fill = statistics.median(r[1] for r in runs[setting])
      wait = statistics.median(r[2] for r in runs[setting])
      peaks = {}
      for r in runs[setting]:
        for role, value in r[3].items():
          if role != "served":
            peaks[role] = max(peaks.get(role, 0.0), value)
      lag = statistics.median(r[3]["lag"] for r in runs[setting])
      max_lag = peaks.pop("max lag")
      del peaks["lag"]
      served = [r[3]["served"] for r in runs[setting] if r[3]["served"]]
      each = ", ".join(f"{r[0]:,.0f}" for r in runs[setting])
      print(f"\n{torso}, {names[setting]} {args.launch_args}: end-to-end "
            f"{fps:,.0f} f/s (runs: {each}), queue {fill}%, learner waiting "
            f"{wait}%, policy lag {lag:.1f} updates (max {max_lag})")
      if served:
        batch, wait_ms, batch_ms = (
            statistics.median(s[i] for s in served) for i in range(3))
        print(f"  inference server: batches of {batch:.1f} environments, "
              f"{wait_ms:.2f} ms from request to compute, {batch_ms:.2f} ms "
              "per batch (medians of the runs' means)")
      print("  peak resident memory: " + ", ".join(
          f"{role} {value:,.0f} MiB" for role, value in
          sorted(peaks.items())))
      # The run whose whole-run PSS peaked highest, split by role.
      top = max(runs[setting], key=lambda r: sum(
          pss for pss, _ in r[4].values()))
      print("  at the whole run's PSS peak: " + ", ".join(
          f"{role}s PSS {pss:,.0f} MiB (private {anon:,.0f})"
          for role, (pss, anon) in sorted(top[4].items())))
      if args.skip_ceilings:
        continue
      envs = per_actor_ceiling("environments", torso, setting, args)["fps"]
      inference = per_actor_ceiling("inference", torso, setting, args)
      learn = _ceiling_in_child("learner", torso, setting, args)
      ceilings = (envs, inference["fps"], learn["fps"])
      # Each ceiling had both cores; end to end, the three share them, so
      # with perfect overlap and no other cost the per-frame times add up.
      shared = 1 / sum(1 / c for c in ceilings)
      print(f"  {fps / min(ceilings):.0%} of the smallest ceiling, "
            f"{fps / shared:.0%} of the shared-machine bound {shared:,.0f} "
            "f/s")
      print(f"  ceilings: environments {envs:,.0f} f/s, inference "
            f"{inference['fps']:,.0f} f/s (oneDNN "
            f"{'on' if inference['onednn'] else 'off'}), learner "
            f"{learn['fps']:,.0f} f/s (oneDNN "
            f"{'on' if learn['onednn'] else 'off'})")
    first = statistics.median(r[0] for r in runs[settings[0]])
    for setting in settings[1:]:
      fps = statistics.median(r[0] for r in runs[setting])
      print(f"  {torso}: {names[setting]} over {names[settings[0]]} = "
            f"{fps / first:.2f}x end to end")
    sys.stdout.flush()


if __name__ == "__main__":
  main()
