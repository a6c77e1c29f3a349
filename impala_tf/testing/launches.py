"""A launcher (`python -m impala_tf.launch`) run by a test: its output line
by line, waiting for a line, and every process it started killed at the
end."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from impala_tf.runtime import processes


def processes_mentioning(marker: str) -> list[int]:
  """Pids whose command line contains `marker` (our unique tmp path)."""
  return sorted(processes.find_processes(marker))


def cmdline(pid: int) -> list[str]:
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
    for pid in processes_mentioning(self.logdir):
      try:
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass

  def result(self) -> dict:
    with open(os.path.join(self.logdir, "result.json")) as f:
      return json.load(f)
