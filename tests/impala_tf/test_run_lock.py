"""One run per run directory: the lock file and who may take it."""

import json
import os
import socket
import subprocess
import sys

import pytest

from impala_tf.records import run_lock


@pytest.fixture(autouse=True)
def no_inherited_token(monkeypatch):
  monkeypatch.delenv(run_lock.TOKEN_ENV, raising=False)


def test_a_second_taker_is_refused_with_the_holders_name(tmp_path):
  first = run_lock.RunLock(str(tmp_path)).acquire()
  assert first.owned
  holder = json.loads((tmp_path / "LOCK").read_text())
  assert holder["pid"] == os.getpid()
  assert holder["host"] == socket.gethostname()
  # Another process (no token of ours) is refused.
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys; from impala_tf.records import run_lock\n"
       "try:\n"
       f"  run_lock.RunLock({str(tmp_path)!r}).acquire()\n"
       "except run_lock.RunDirectoryBusyError as e:\n"
       "  print(e); sys.exit(3)"],
      capture_output=True, text=True, timeout=60,
      env={k: v for k, v in os.environ.items() if k != run_lock.TOKEN_ENV})
  assert result.returncode == 3, result.stderr
  assert f"is in use by another run (pid {os.getpid()} on " in result.stdout
  first.release()
  assert not (tmp_path / "LOCK").exists()


def test_the_runs_own_children_join_through_the_token(tmp_path):
  owner = run_lock.RunLock(str(tmp_path)).acquire()
  assert os.environ[run_lock.TOKEN_ENV] == owner.token
  child = run_lock.RunLock(str(tmp_path)).acquire()  # Same environment.
  assert not child.owned and child.token == owner.token
  child.release()  # A member does not remove the owner's lock.
  assert (tmp_path / "LOCK").exists()
  owner.release()


def test_a_dead_holder_on_this_host_is_taken_over_with_a_note(tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  (tmp_path / "LOCK").write_text(json.dumps(
      {"host": socket.gethostname(), "pid": dead.pid, "start_time": 0,
       "token": "old"}))
  notes = []
  lock = run_lock.RunLock(str(tmp_path)).acquire(log=notes.append)
  assert lock.owned
  assert notes and "which has ended" in notes[0] and str(dead.pid) in notes[0]
  lock.release()


def test_a_lock_left_by_a_predecessor_with_our_pid_is_taken_over(tmp_path):
  # A restarted container: pid 1 again, same host name, the old lock's
  # token not ours.
  (tmp_path / "LOCK").write_text(json.dumps(
      {"host": socket.gethostname(), "pid": os.getpid(), "start_time": 0,
       "token": "predecessor"}))
  notes = []
  lock = run_lock.RunLock(str(tmp_path)).acquire(log=notes.append)
  assert lock.owned and "which has ended" in notes[0]
  lock.release()


def test_another_hosts_lock_needs_force(tmp_path):
  (tmp_path / "LOCK").write_text(json.dumps(
      {"host": "elsewhere", "pid": 1, "start_time": 0, "token": "x"}))
  with pytest.raises(run_lock.RunDirectoryBusyError,
                     match="on elsewhere.*pass --force_unlock"):
    run_lock.RunLock(str(tmp_path)).acquire()
  notes = []
  lock = run_lock.RunLock(str(tmp_path)).acquire(force=True, log=notes.append)
  assert lock.owned and "--force_unlock given" in notes[0]
  lock.release()
