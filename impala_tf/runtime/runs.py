"""A pool of whole runs (`python -m impala_tf.launch ...`), for the tools
that start many: the ablation runner, population-based training, the
fault-injection run.

Each run is a child of a `processes.Supervisor` (its own session and
process group, killed with this process), not restarted when it ends; its
output (stdout and stderr) is appended to `output.log` in its run
directory; its result is the run directory's `result.json`. A run is
stopped with SIGTERM (it saves a checkpoint and ends as "stopped") and
killed after a grace period; starting the same command again resumes it
from its checkpoint.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Optional, Sequence

from impala_tf.runtime import processes

OUTPUT_LOG = "output.log"

# [ours] How long a whole run may take to stop after SIGTERM: the learner's
# own grace (roles.local.LEARNER_STOP_GRACE_S) and the launcher's around it.
STOP_GRACE_S = 300.0


def output_log(logdir: str) -> str:
  """Where a run's output goes."""
  return os.path.join(logdir, OUTPUT_LOG)


def result(logdir: str) -> Optional[dict]:
  """The run's result.json (None before it wrote one)."""
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  return run_dir.read_json(os.path.join(logdir, run_dir.RESULT_FILE))


def status(logdir: str) -> Optional[str]:
  """The run's status ("completed", "stopped", "diverged", "failed") or
  None before it has one."""
  return (result(logdir) or {}).get("status")


class RunPool:
  """Named runs started, polled and stopped together (module docstring).

  Args:
    log: where the pool says what it does.
    grace_s: how long a run may take to stop after SIGTERM.
  """

  def __init__(self, *, log: Callable[[str], None] = print,
               grace_s: float = STOP_GRACE_S):
    self._supervisor = processes.Supervisor(grace_s=grace_s, log=log)
    self._logdirs: dict[str, str] = {}
    self.running: set[str] = set()

  def start(self, name: str, argv: Sequence[str], logdir: str, *,
            env: Optional[Mapping[str, str]] = None) -> int:
    """Starts run `name` (`argv`, writing to `logdir`); returns its pid.
    A run directory that is a URL (gs://...) gets no output.log: the run's
    output goes to this process's."""
    log_path = None
    if "://" not in logdir:
      os.makedirs(logdir, exist_ok=True)
      log_path = output_log(logdir)
    pid = self._supervisor.start(name, argv, env=env, log_path=log_path)
    self._logdirs[name] = logdir
    self.running.add(name)
    return pid

  def poll(self) -> dict[str, int]:
    """{name: exit code} of the runs that ended since the last call."""
    ended = self._supervisor.poll()
    self.running -= set(ended)
    return ended

  def pid(self, name: str) -> Optional[int]:
    return self._supervisor.pid(name)

  def ask_to_stop(self, name: str) -> None:
    """SIGTERM to run `name`, without waiting: it saves a checkpoint and
    ends (`poll` sees it)."""
    self._supervisor.send_signal(name, processes.signal.SIGTERM)

  def stop(self, names: Optional[Sequence[str]] = None) -> dict[str, int]:
    """Stops runs `names` (default every running one): SIGTERM, killed
    after the grace period. Returns {name: exit code}."""
    names = sorted(self.running if names is None else names)
    codes = self._supervisor.terminate(names)
    self.running -= set(names)
    return codes

  def result(self, name: str) -> Optional[dict]:
    return result(self._logdirs[name])

  def last_line(self, name: str) -> str:
    """The last line run `name` wrote (its error, when it failed)."""
    return processes.last_line(output_log(self._logdirs[name]))
