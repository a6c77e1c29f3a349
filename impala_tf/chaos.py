r"""The fault-injection run: `python -m impala_tf.chaos`.

  python -m impala_tf.chaos [--total_frames=600000] [--output=DIR] [--seed=0]
      [--inference=central]

Trains Catch with the launcher (3 actor processes) while it injects, at
random points spread over the first 80% of its frame budget (by frames, not
seconds, so a faster or slower machine sees every fault before the run
ends): SIGKILLs and SIGSTOPs (then SIGCONTs) of
random actors, a SIGKILL of the learner followed by the same launch command
(which resumes from the newest checkpoint), a stretch of failing checkpoint
writes, and one non-finite loss. Faults reach the learner through the fault
file of `impala_tf.runtime.faults`.

At the end it checks that the run reached its frame budget through its
checkpoints, that its final mean return is the learned one (>= 0.9; random
play gets about -0.6), that no checkpoint holds a non-finite value, and
that every fault got its line in the run's output, and prints a table:
faults injected, survived, frames lost at each learner restart, checkpoints
lost (must be 0). Exit 0 when every check holds.
"""

import dataclasses
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from typing import Optional

from absl import app
from absl import flags

from impala_tf import launch_flags
from impala_tf.runtime import processes
from impala_tf.runtime import runs

# The run's name in the pool.
_RUN = "run"
_FRAMES = re.compile(r"^frames ([\d,]+) ")
_RESTORED = re.compile(r"Restored \S+ at ([\d,]+) frames")


@dataclasses.dataclass
class Fault:
  """One kind of fault: how often it was injected and survived."""
  name: str
  injected: int = 0
  survived: int = 0
  detail: list = dataclasses.field(default_factory=list)


class ChaosRun:
  """One chaos run (see the module docstring)."""

  def __init__(self, output: str, seed: int, total_frames: int,
               log=print, inference: str = "actor"):
    self.output = output
    self.inference = inference
    self.logdir = os.path.join(output, "run")
    self.faults_file = os.path.join(output, "faults")
    self.total_frames = total_frames
    self.rng = random.Random(seed)
    self.log = log
    self.lines: list[str] = []
    self.pool = runs.RunPool(log=log)
    self.launches = 0
    self._codes: dict[str, int] = {}  # The launcher's exit code.
    self._reader: Optional[threading.Thread] = None
    self._done = threading.Event()  # Set when the run's output is all in.
    self.faults = {name: Fault(name) for name in (
        "actor SIGKILL", "actor SIGSTOP", "learner SIGKILL",
        "checkpoint writes fail", "non-finite loss")}

  # ------------------------------------------------------------ the run

  def _command(self):
    return [sys.executable, "-m", "impala_tf.launch", "--suite=catch",
            "--num_actors=3", f"--logdir={self.logdir}",
            f"--total_frames={self.total_frames}",
            "--checkpoint_interval_s=3", "--log_interval_s=1",
            # A learning rate that learns Catch slowly enough for the
            # faults to land mid-training.
            "--learning_rate=3e-3", f"--inference={self.inference}"]

  def _launch(self):
    env = dict(os.environ, IMPALA_TF_FAULTS_FILE=self.faults_file)
    self.pool.start(_RUN, self._command(), self.logdir, env=env)
    self.launches += 1
    if self._reader is None:
      self._reader = threading.Thread(target=self._read, daemon=True)
      self._reader.start()

  def _read(self):
    """Follows the run's output.log (every launch appends to it) into
    `lines`, until `_done` is set and everything is read."""
    pending = b""
    with open(runs.output_log(self.logdir), "rb") as f:
      while True:
        finished = self._done.is_set()
        chunk = f.read()
        pending += chunk
        *complete, pending = pending.split(b"\n")
        self.lines.extend(l.decode(errors="replace") for l in complete)
        if finished and not chunk:
          return
        if not chunk:
          time.sleep(0.1)

  def _running(self) -> bool:
    self._codes.update(self.pool.poll())
    return _RUN in self.pool.running

  def _wait(self, timeout_s: float) -> int:
    """Waits for the run's launcher to end; returns its exit code."""
    deadline = time.monotonic() + timeout_s
    while self._running():
      if time.monotonic() > deadline:
        raise TimeoutError(f"the run did not end within {timeout_s:g} s")
      time.sleep(0.2)
    return self._codes[_RUN]

  def _frames(self) -> int:
    for line in reversed(self.lines):
      match = _FRAMES.search(line)
      if match:
        return int(match.group(1).replace(",", ""))
    return 0

  def _wait_for(self, pattern: str, after: int, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
      if any(regex.search(l) for l in self.lines[after:]):
        return True
      time.sleep(0.2)
    return False

  def _pids(self, role: str) -> list[int]:
    return sorted(processes.find_processes(self.logdir, role))

  def _set_faults(self, text: str):
    with open(self.faults_file + ".tmp", "w") as f:
      f.write(text)
    os.replace(self.faults_file + ".tmp", self.faults_file)

  # ---------------------------------------------------------- the faults

  def kill_actor(self):
    fault = self.faults["actor SIGKILL"]
    pids = self._pids("actor")
    if not pids:
      return
    mark = len(self.lines)
    os.kill(self.rng.choice(pids), signal.SIGKILL)
    fault.injected += 1
    if self._wait_for(r"supervisor: actor \d+ \(pid \d+\) killed by SIGKILL",
                      mark, 30) and self._wait_for(r"restarted actor_", mark,
                                                   60):
      fault.survived += 1

  def stop_actor(self):
    fault = self.faults["actor SIGSTOP"]
    pids = self._pids("actor")
    if not pids:
      return
    pid = self.rng.choice(pids)
    os.kill(pid, signal.SIGSTOP)
    fault.injected += 1
    before = self._frames()
    time.sleep(self.rng.uniform(3, 8))
    during = self._frames()
    os.kill(pid, signal.SIGCONT)
    mark = len(self.lines)
    # The others kept the learner busy; afterwards training goes on.
    if self._wait_for(r"^frames ", mark, 30) and during > before:
      fault.survived += 1
    fault.detail.append(f"{during - before:,} frames while stopped")

  def kill_learner(self):
    fault = self.faults["learner SIGKILL"]
    pids = self._pids("learner")
    if not pids:
      return
    frames = self._frames()
    os.kill(pids[0], signal.SIGKILL)
    fault.injected += 1
    self._wait(60)
    mark = len(self.lines)
    self._launch()  # The same command again: it resumes.
    if self._wait_for(_RESTORED.pattern, mark, 120):
      restored = next(int(m.group(1).replace(",", "")) for m in map(
          _RESTORED.search, self.lines[mark:]) if m)
      lost = max(0, frames - restored)
      fault.detail.append(f"{lost:,} frames lost")
      if self._wait_for(r"^frames ", mark, 120):
        fault.survived += 1

  def fail_checkpoint_writes(self):
    fault = self.faults["checkpoint writes fail"]
    mark = len(self.lines)
    self._set_faults("checkpoint_write")
    fault.injected += 1
    time.sleep(self.rng.uniform(5, 9))
    self._set_faults("")
    if self._wait_for(r"Could not save checkpoint", mark, 5):
      fault.survived += 1

  def nonfinite_loss(self):
    fault = self.faults["non-finite loss"]
    mark = len(self.lines)
    self._set_faults(f"nonfinite_loss:{self.rng.getrandbits(32)}")
    fault.injected += 1
    if self._wait_for(r"nonfinite updates [1-9]", mark, 30):
      fault.survived += 1
    self._set_faults("")

  # --------------------------------------------------------------- main

  def run(self) -> bool:
    # The run's flags resolved as the launcher will, before it starts.
    launch_flags.plan_from_argv(["impala_tf.launch", *self._command()[3:]],
                                environ={})
    os.makedirs(self.output, exist_ok=True)
    self._set_faults("")
    self._launch()
    if not self._wait_for(r"^frames ", 0, 180):
      raise RuntimeError("The run never trained:\n" + "\n".join(
          self.lines[-30:]))
    plan = ["kill_actor", "kill_actor", "stop_actor", "stop_actor",
            "kill_learner", "fail_checkpoint_writes", "nonfinite_loss"]
    self.rng.shuffle(plan)
    # One fault in each of len(plan) equal slices of the budget's first
    # 80%, at a random point of its slice.
    marks = [self.total_frames * 0.8 * (i + self.rng.uniform(0.2, 0.8)) /
             len(plan) for i in range(len(plan))]
    for name, mark in zip(plan, marks):
      while self._frames() < mark and self._running():
        time.sleep(0.5)
      if not self._running():
        break
      self.log(f"chaos: {name.replace('_', ' ')} at {self._frames():,} "
               "frames")
      getattr(self, name)()
    code = self._wait(3600)
    self._done.set()
    self._reader.join(timeout=30)
    return self.report(code)

  def report(self, code: int) -> bool:
    from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
    from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
    from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    # Reading checkpoints: TF quiet, its CPU kernels decided first, as in
    # every entry point.
    cpu.configure_onednn("auto", "learner")
    tf_startup.set_log_level()
    tf = tf_startup.import_tensorflow()
    result = run_dir.read_json(os.path.join(self.logdir,
                                            run_dir.RESULT_FILE)) or {}
    checks = {
        "exit code 0": code == 0,
        "frame budget reached": result.get("status") == "completed" and
                                result.get("num_frames", 0) >= (
                                    self.total_frames),
        "final return learned (>= 0.9)": result.get("mean_return", -1) >= 0.9,
    }
    state = tf.train.get_checkpoint_state(
        os.path.join(self.logdir, run_dir.CHECKPOINT_DIR))
    paths = list(state.all_model_checkpoint_paths) if state else []
    lost, finite = 0, True
    for path in paths:
      try:
        reader = tf.train.load_checkpoint(path)
      except (tf.errors.OpError, ValueError):
        lost += 1
        continue
      for name in reader.get_variable_to_shape_map():
        value = np.asarray(reader.get_tensor(name))
        if np.issubdtype(value.dtype, np.floating):
          finite &= bool(np.isfinite(value).all())
    checks["no checkpoint lost"] = lost == 0 and bool(paths)
    checks["every checkpoint finite"] = finite
    for fault in self.faults.values():
      checks[f"{fault.name}: every one survived"] = (
          fault.survived == fault.injected)
    self.log("")
    self.log("| fault | injected | survived | detail |")
    self.log("| --- | --- | --- | --- |")
    for fault in self.faults.values():
      self.log(f"| {fault.name} | {fault.injected} | {fault.survived} | "
               f"{'; '.join(fault.detail) or '-'} |")
    self.log(f"| checkpoints lost | - | - | {lost} of {len(paths)} kept |")
    self.log("")
    self.log(f"Run: {result.get('num_frames', 0):,} frames, status "
             f"{result.get('status')}, mean return "
             f"{result.get('mean_return', float('nan')):.2f}, "
             f"{self.launches} launches.")
    for name, ok in checks.items():
      self.log(f"{'ok  ' if ok else 'FAIL'} {name}")
    with open(os.path.join(self.output, "chaos.json"), "w") as f:
      json.dump({"checks": checks, "faults": [dataclasses.asdict(f) for f in
                                              self.faults.values()],
                 "checkpoints_lost": lost, "result": result}, f, indent=2)
    with open(os.path.join(self.output, "output.log"), "w") as f:
      f.write("\n".join(self.lines) + "\n")
    return all(checks.values())


FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_integer("total_frames", 600_000, "The run's frame budget.")
  flags.DEFINE_string("output", None, "Directory for the run, its output "
                      "and chaos.json; default a new temporary directory.")
  flags.DEFINE_integer("seed", 0, "Seeds the fault plan.")
  flags.DEFINE_enum("inference", "actor", ["actor", "central"], "Where the "
                    "run's policy acts (the launcher's --inference): with "
                    "central, actors are killed and stopped mid-request "
                    "and the learner takes the inference server with it.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}.")
  output = FLAGS.output or tempfile.mkdtemp(prefix="impala_tf_chaos_")
  chaos = ChaosRun(output, FLAGS.seed, FLAGS.total_frames,
                   inference=FLAGS.inference)
  ok = chaos.run()
  print(f"Output in {output}.")
  return 0 if ok else 1


if __name__ == "__main__":
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  cli.run("chaos", main, define_flags=_define_flags)
