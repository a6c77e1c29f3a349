"""`python -m impala_tf.launch` in real processes: learning, faults, signals,
isolation and bad input."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from impala_tf.runtime import isolation
from impala_tf.runtime import server as server_lib


def _processes_mentioning(marker: str) -> list[int]:
  """Pids whose command line contains `marker` (our unique tmp path)."""
  pids = []
  for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) == os.getpid():
      continue
    try:
      with open(f"/proc/{entry}/cmdline", "rb") as f:
        cmdline = f.read().decode(errors="replace")
    except OSError:
      continue
    if marker in cmdline:
      pids.append(int(entry))
  return pids


def _cmdline(pid: int) -> list[str]:
  with open(f"/proc/{pid}/cmdline", "rb") as f:
    return f.read().decode().split("\0")


class Launch:
  """A launcher subprocess whose output is collected line by line."""

  def __init__(self, tmp_path, *flags, env=None):
    self.logdir = str(tmp_path / "run")
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "impala_tf.launch", f"--logdir={self.logdir}",
         "--log_interval_s=1", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=tmp_path, env=env, start_new_session=True)
    self.lines = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line.rstrip("\n"))

  @property
  def output(self) -> str:
    return "\n".join(self.lines)

  def wait_for(self, pattern, timeout_s=120.0, count=1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
      matches = [m for m in map(re.compile(pattern).search, list(self.lines))
                 if m]
      if len(matches) >= count:
        return matches[-1]
      if self.proc.poll() is not None and not self._reader.is_alive():
        break
      time.sleep(0.2)
    raise AssertionError(f"{pattern!r} x{count} not seen; output:\n"
                         f"{self.output}")

  def finish(self, timeout_s=240.0) -> int:
    try:
      code = self.proc.wait(timeout=timeout_s)
    finally:
      self.kill_everything()
    self._reader.join(timeout=5)
    return code

  def kill_everything(self):
    if self.proc.poll() is None:
      os.killpg(self.proc.pid, signal.SIGKILL)
      self.proc.wait()
    for pid in _processes_mentioning(self.logdir):
      try:
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass

  def result(self) -> dict:
    with open(os.path.join(self.logdir, "result.json")) as f:
      return json.load(f)


def _run_cli(tmp_path, *flags, timeout_s=120):
  return subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", *flags], cwd=tmp_path,
      capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.slow
def test_learner_and_two_actor_processes_learn_catch_then_exit(tmp_path):
  launch = Launch(tmp_path, "--suite=catch", "--num_actors=2")
  code = launch.finish()
  assert code == 0, launch.output
  assert launch.result()["mean_return"] >= 0.9, launch.output
  assert launch.output.count("connected to 127.0.0.1:") == 2
  assert _processes_mentioning(launch.logdir) == []


@pytest.mark.slow
def test_killed_actor_is_restarted_and_training_still_succeeds(tmp_path):
  launch = Launch(tmp_path, "--suite=catch", "--num_actors=2",
                  "--total_frames=192000")
  try:
    launch.wait_for(r"^frames [\d,]+ .* upd/s", timeout_s=150)
    (victim,) = [pid for pid in _processes_mentioning(launch.logdir)
                 if "--job=actor" in _cmdline(pid) and
                 "--task=0" in _cmdline(pid)]
    os.kill(victim, signal.SIGKILL)
    # The supervisor restarts it and it joins the running learner.
    launch.wait_for(r"Actor 0: connected to", count=2, timeout_s=150)
    code = launch.finish()
  finally:
    launch.kill_everything()
  assert code == 0, launch.output
  assert "actor_0" in launch.output and "restarting" in launch.output
  result = launch.result()
  assert result["num_frames"] >= 192000
  assert result["mean_return"] >= 0.9, launch.output
  assert _processes_mentioning(launch.logdir) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_process_and_port_is_private(tmp_path, sig):
  launch = Launch(tmp_path, "--suite=catch", "--num_actors=2",
                  "--total_frames=100000000")
  try:
    port = int(launch.wait_for(r"TF server on port (\d+)",
                               timeout_s=150).group(1))
    launch.wait_for(r"Actor 1: connected", timeout_s=150)
    children = _processes_mentioning(launch.logdir)
    assert len(children) >= 3  # launcher(s), learner, two actors
    if isolation.private_network_available():
      # The learner runs in its own network namespace: from here, outside
      # it, nothing listens on that port.
      with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    else:
      assert f"port {port} listens on all interfaces" in launch.output
    launch.proc.send_signal(sig)
    launch.proc.wait(timeout=15)
    deadline = time.monotonic() + 5
    while _processes_mentioning(launch.logdir) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert _processes_mentioning(launch.logdir) == [], launch.output
  finally:
    launch.kill_everything()


@pytest.mark.parametrize("flags,message", [
    (["--suite=procgen"], "Unknown suite 'procgen'; expected one of atari57"),
    (["--suite=atari57", "--levels=pongg"], "pong"),
    (["--suite=catch", "--num_actors=0"], "--num_actors must be at least 1"),
    (["--suite=catch", "--batch_size=64", "--queue_capacity=32"],
     "smaller than the batch size"),
    (["--suite=catch", "--torso=resnet"], "torso"),
    (["--suite=catch", "--max_grad_norm=big"], "number or 'none'"),
    (["--suite=catch", "--actor_threads=-1"], "--actor_threads"),
])
def test_bad_input_is_one_clear_error(tmp_path, flags, message):
  result = _run_cli(tmp_path, *flags)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr
  assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_learner_is_a_clear_error(tmp_path):
  port = server_lib.free_port()
  result = _run_cli(tmp_path, "--suite=catch", "--job=actor",
                    f"--learner_address=127.0.0.1:{port}",
                    "--connect_timeout_s=2")
  assert result.returncode == 2
  assert f"learner at 127.0.0.1:{port} unreachable" in result.stderr
  assert "retrying" in result.stdout
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_actor_whose_learner_dies_stops_with_one_clear_line(tmp_path):
  # Cluster mode: no supervisor ends the actor, so it must notice by itself.
  port = server_lib.free_port()
  learner = Launch(tmp_path, "--suite=catch", "--job=learner",
                   f"--port={port}", "--num_actors=1",
                   "--total_frames=100000000")
  actor = Launch(tmp_path, "--suite=catch", "--job=actor",
                 f"--learner_address=127.0.0.1:{port}", "--num_actors=1")
  try:
    actor.wait_for(r"Actor 0: connected")
    learner.wait_for(r"^frames [\d,]+ ")  # The actor's unrolls arrive.
    learner.proc.kill()
    learner.proc.wait()
    code = actor.proc.wait(timeout=60)
    actor._reader.join(timeout=5)  # pylint: disable=protected-access
    assert code == 1, actor.output
    assert "Actor 0 lost the learner after" in actor.output
    assert "Traceback" not in actor.output
  finally:
    learner.kill_everything()
    actor.kill_everything()
