"""The launcher's process supervision and local network isolation, with real
processes."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from impala_tf.runtime import isolation, processes, server

from impala_tf.testing import runtime_roles as roles


def _gone(pid: int) -> bool:
  """No such process (or only an unreaped zombie, which runs nothing)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] == "Z"
  except FileNotFoundError:
    return True


def _wait_gone(pids, timeout_s):
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    if all(_gone(p) for p in pids):
      return True
    time.sleep(0.05)
  return False


@pytest.fixture
def supervisor_proc(tmp_path):
  procs = []

  def start(*args):
    proc = roles.Proc("supervisor", "--logdir", str(tmp_path / "logs"), *args)
    procs.append(proc)
    started = proc.read_until("pids", timeout_s=30)
    assert all(started["pids"].values()), started
    return proc, started["pids"]

  yield start
  for proc in procs:
    proc.kill()


def _wait_stubborn_ready(tmp_path):
  # The stubborn child must have installed its SIGTERM handler, or the test
  # would not exercise the SIGKILL escalation.
  log = tmp_path / "logs" / "stubborn.log"
  deadline = time.monotonic() + 20
  while not (log.exists() and b"stubborn ready" in log.read_bytes()):
    assert time.monotonic() < deadline, "stubborn child never started"
    time.sleep(0.05)


def test_runtime_sigterm_to_supervisor_ends_every_child(supervisor_proc,
                                                        tmp_path):
  proc, pids = supervisor_proc("--grace", "1.5")
  _wait_stubborn_ready(tmp_path)
  start = time.monotonic()
  proc.popen.send_signal(signal.SIGTERM)
  assert proc.read_until("result", timeout_s=10)["result"] == [
      None, signal.SIGTERM]
  assert proc.popen.wait(timeout=10) == 0
  assert _wait_gone(pids.values(), timeout_s=1)
  # The stubborn child ignores SIGTERM: it took the grace period, no more.
  assert time.monotonic() - start < 5


def test_runtime_killed_supervisor_takes_children_with_it(supervisor_proc,
                                                          tmp_path):
  proc, pids = supervisor_proc()
  _wait_stubborn_ready(tmp_path)
  proc.kill()  # SIGKILL: no cleanup code runs; PR_SET_PDEATHSIG does it.
  assert _wait_gone(pids.values(), timeout_s=3), pids


def test_runtime_killed_child_is_restarted(supervisor_proc):
  proc, pids = supervisor_proc()
  os.kill(pids["worker"], signal.SIGKILL)
  restarting = proc.read_until("log", timeout_s=10)
  assert "worker" in restarting["log"] and "restarting in" in restarting["log"]
  assert "SIGKILL" in restarting["log"]
  restarted = proc.read_until("log", timeout_s=10)
  assert "restarted worker" in restarted["log"]
  new_pid = restarted["pids"]["worker"]
  assert new_pid not in (None, pids["worker"]) and not _gone(new_pid)
  assert restarted["pids"]["main"] == pids["main"]
  proc.popen.send_signal(signal.SIGTERM)
  proc.read_until("result", timeout_s=10)
  assert _wait_gone([new_pid, *pids.values()], timeout_s=1)


def test_runtime_main_child_exit_stops_the_others(supervisor_proc):
  proc, pids = supervisor_proc("--main-exits-after", "1", "--grace", "1")
  assert proc.read_until("result", timeout_s=15)["result"] == [3, None]
  assert _wait_gone(pids.values(), timeout_s=1)


def test_runtime_supervisor_rejects_duplicate_and_empty_children():
  sup = processes.Supervisor(grace_s=1)
  sup.start("a", [sys.executable, "-c", "import time; time.sleep(30)"])
  try:
    with pytest.raises(ValueError, match="already running"):
      sup.start("a", ["true"])
    with pytest.raises(ValueError, match="empty command"):
      sup.start("b", [])
  finally:
    codes = sup.terminate_all()
  assert codes == {"a": -signal.SIGTERM}


_SLOW_TO_STOP = ("import signal, sys, time\n"
                 "def stop(*_):\n"
                 "  time.sleep(2)\n"
                 "  sys.exit(0)\n"
                 "signal.signal(signal.SIGTERM, stop)\n"
                 "print('ready', flush=True)\n"
                 "time.sleep(120)\n")
_IGNORES_SIGTERM = ("import signal, time; "
                    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "print('ready', flush=True); time.sleep(120)")


def test_runtime_a_child_may_have_a_longer_grace_period(tmp_path):
  # A learner needs longer to stop (an update, a checkpoint, an export) than
  # the default grace allows; the other children keep the default.
  logs = []
  sup = processes.Supervisor(grace_s=1, logdir=tmp_path, log=logs.append)
  sup.start("slow", [sys.executable, "-c", _SLOW_TO_STOP], grace_s=30)
  sup.start("stubborn", [sys.executable, "-c", _IGNORES_SIGTERM])
  deadline = time.monotonic() + 20
  while not all((tmp_path / f"{name}.log").exists() and
                b"ready" in (tmp_path / f"{name}.log").read_bytes()
                for name in ("slow", "stubborn")):
    assert time.monotonic() < deadline, "children never started"
    time.sleep(0.05)
  stubborn = sup.pid("stubborn")
  codes = sup.terminate_all()
  # The slow child took 2 s, more than the default 1 s, and exited by
  # itself; the one that ignores SIGTERM was killed after the default.
  assert codes == {"slow": 0, "stubborn": -signal.SIGKILL}
  assert [line for line in logs if "ignored SIGTERM" in line] == [
      f"supervisor: stubborn (pid {stubborn}) ignored SIGTERM for 1s; "
      "killing it"]


_SERVE = """
import os, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))  # All interfaces, like a TF server.
srv.listen()
inside = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print("ready", os.environ.get("IMPALA_TF_NETNS"), flush=True)
sys.stdin.read()
"""


def _serve(argv_prefix, port):
  argv = argv_prefix([sys.executable, "-c", _SERVE, str(port)])
  proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
  return proc, proc.stdout.readline().split()


def _reachable(port):
  try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    return True
  except OSError:
    return False


@pytest.mark.skipif(not isolation.private_network_available(),
                    reason="user + network namespaces are not allowed here")
def test_runtime_isolated_server_is_unreachable_from_outside():
  port = server.free_port()
  proc, ready = _serve(isolation.isolated_argv, port)
  try:
    # Reachable from inside the namespace (the child connected to itself),
    # which is marked as isolated...
    assert ready == ["ready", "1"]
    # ...and not from outside, not even over this host's loopback.
    assert not _reachable(port)
  finally:
    proc.communicate("")
  assert proc.returncode == 0
  # Control: the same server without isolation is reachable, so the check
  # above does test the namespace.
  proc, ready = _serve(list, port)
  try:
    assert ready == ["ready", "None"]
    assert _reachable(port)
  finally:
    proc.communicate("")


def test_runtime_exposure_warning_names_the_port():
  warning = isolation.exposure_warning(43210)
  assert "\n" not in warning and "43210" in warning
  assert warning.startswith("WARNING")


# Crashes with SIGSEGV inside `reset`, in a thread (as an environment thread
# pool would), after Python's fault handler is on (absl's app.run turns it
# on in the launcher's children).
_SEGFAULTS = """\
import ctypes, faulthandler, sys, threading
faulthandler.enable()
def reset():
  print("about to crash", flush=True)
  ctypes.memset(0, 1, 1)
thread = threading.Thread(target=reset)
thread.start()
thread.join()
"""


@pytest.mark.parametrize("with_logdir", [False, True])
def test_runtime_a_child_killed_by_a_signal_is_named_with_its_place(
    tmp_path, with_logdir):
  package = tmp_path / "code" / "engine_pkg"
  package.mkdir(parents=True)
  (package / "crashes.py").write_text(_SEGFAULTS)
  # Paths are said from the top-level package on.
  (package / "__init__.py").write_text("")
  logs = []
  sup = processes.Supervisor(
      grace_s=1, restart_backoff_s=0.05, crash_loop_count=2,
      logdir=tmp_path / "logs" if with_logdir else None, log=logs.append)
  sup.start("actor_3", [sys.executable, str(package / "crashes.py")],
            restart=True)
  try:
    result = sup.run_until("learner_that_never_was", poll_interval_s=0.05,
                           handle_signals=False)
  finally:
    sup.terminate_all()
  where = "killed by SIGSEGV in engine_pkg/crashes.py reset (line 5)"
  assert result.crash_loop == f"actor 3 {where}", logs
  restart, last = [line for line in logs if "killed by" in line]
  assert re.fullmatch(rf"supervisor: actor 3 \(pid \d+\) {re.escape(where)}; "
                      r"restarting in 0\.1s", restart), restart
  assert re.fullmatch(rf"supervisor: actor 3 \(pid \d+\) {re.escape(where)}; "
                      r"that is 2 times in 300 s, so restarting again would "
                      r"not help", last), last


def test_runtime_fault_location_reads_the_crashing_thread():
  dump = [
      "Fatal Python error: Segmentation fault",
      "Thread 0x00007f0000000001 (most recent call first):",
      '  File "/usr/lib/python3.11/threading.py", line 320 in wait',
      "Current thread 0x00007f0000000002 (most recent call first):",
      f'  File "{os.path.abspath(processes.__file__)}", line 12 in poll',
      '  File "/elsewhere/outer.py", line 3 in <module>',
      "Extension modules: numpy._core._multiarray_umath (total: 1)",
  ]
  assert processes.fault_location(dump) == (
      "impala_tf/runtime/processes.py poll (line 12)")
  # A thread without Python frames, and output without a dump.
  assert processes.fault_location(dump[:4] + dump[-1:]) is None
  assert processes.fault_location(["Traceback", "ValueError: x"]) is None
  assert processes.killed_by(-signal.SIGKILL, ["x"]) == "killed by SIGKILL"
  assert processes.killed_by(-signal.SIGSEGV, dump) == (
      "killed by SIGSEGV in impala_tf/runtime/processes.py poll (line 12)")
