"""The template process: children forked from one set of imports, with real
processes (`impala_tf.runtime.template`)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from impala_tf.runtime import processes
from impala_tf.runtime import template as template_lib

# A module the template imports: records which process imported it.
_HEAVY = "IMPORTED_BY = __import__('os').getpid()\n"

# The command the children run (`python -m probe ...`): reports what it sees,
# then exits with the code given, or sleeps, or fails.
_PROBE = textwrap.dedent("""
    import atexit, json, os, sys, time
    import heavy
    atexit.register(lambda: print("atexit ran", flush=True))
    print(json.dumps(dict(
        argv=sys.argv[1:], orig_argv=sys.orig_argv, name=__name__,
        heavy_imported_by=heavy.IMPORTED_BY, pid=os.getpid(),
        pgid=os.getpgid(0), cwd=os.getcwd(), probe=os.environ.get("PROBE"),
        stdin=sys.stdin.read())), flush=True)
    print("probe says goodbye", file=sys.stderr, flush=True)
    if sys.argv[1] == "sleep":
      time.sleep(120)
    if sys.argv[1] == "fail":
      raise ValueError("the probe failed")
    sys.exit(int(sys.argv[1]))
""")


def _command_line(pid: int) -> list[str]:
  with open(f"/proc/{pid}/cmdline", "rb") as f:
    return [a for a in f.read().decode().split("\0") if a]


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    try:
      with open(f"/proc/{pid}/stat") as f:
        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
          return True
    except FileNotFoundError:
      return True
    time.sleep(0.05)
  return False


@pytest.fixture
def probe_env(tmp_path, monkeypatch):
  """This process's environment, where the probe modules can be imported."""
  (tmp_path / "heavy.py").write_text(_HEAVY)
  (tmp_path / "probe.py").write_text(_PROBE)
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p))
  return dict(os.environ)


@pytest.fixture
def template(probe_env):
  owned = template_lib.Template(["heavy"], env=probe_env, label="probe-run")
  yield owned
  owned.close()


def _probe(*args):
  return [sys.executable, "-m", "probe", *map(str, args)]


def test_a_forked_child_runs_its_command_as_python_m_would(
    template, probe_env, tmp_path):
  out_path = tmp_path / "out.txt"
  with open(out_path, "wb") as out:
    child = template.start(_probe(3), stdout=out.fileno(),
                           stderr=out.fileno(),
                           env=dict(probe_env, PROBE="seen"),
                           cwd=str(tmp_path))
  assert child.wait(timeout=30) == 3
  assert child.returncode == 3 and child.poll() == 3
  lines = out_path.read_text().splitlines()
  report = json.loads(lines[0])
  assert report["argv"] == ["3"]
  assert report["orig_argv"] == _probe(3)
  assert report["name"] == "__main__"
  assert report["cwd"] == str(tmp_path)
  assert report["probe"] == "seen"
  assert report["stdin"] == ""  # /dev/null, as the supervisor gives.
  assert report["pid"] == child.pid
  assert report["pgid"] == child.pid  # A process group of its own.
  # The module came from the template's memory, not from a new import.
  assert report["heavy_imported_by"] == template.pid != child.pid
  # Its stderr went where it was told, and the interpreter's exit ran.
  assert "probe says goodbye" in lines and "atexit ran" in lines


def test_a_forked_child_shows_its_own_command(template):
  child = template.start(_probe("sleep", "--logdir=/some/run"))
  deadline = time.monotonic() + 20
  while _command_line(child.pid)[2:3] != ["probe"]:
    assert time.monotonic() < deadline, _command_line(child.pid)
    time.sleep(0.05)
  assert _command_line(child.pid) == _probe("sleep", "--logdir=/some/run")
  assert "probe-run" in _command_line(template.pid)  # Its label.
  os.killpg(child.pid, signal.SIGKILL)
  assert child.wait(timeout=10) == -signal.SIGKILL


def test_a_command_longer_than_the_room_is_cut_but_runs_whole(
    template, tmp_path):
  long_arg = "x" * (template_lib.COMMAND_LINE_ROOM * 2)
  out_path = tmp_path / "out.txt"
  with open(out_path, "wb") as out:
    child = template.start(_probe("sleep", long_arg), stdout=out.fileno())
  deadline = time.monotonic() + 20
  while not out_path.read_text():
    assert time.monotonic() < deadline
    time.sleep(0.05)
  shown = b"\0".join(a.encode() for a in _command_line(child.pid))
  assert len(shown) < template_lib.COMMAND_LINE_ROOM + 200
  assert json.loads(out_path.read_text().splitlines()[0])["argv"] == [
      "sleep", long_arg]
  os.killpg(child.pid, signal.SIGKILL)
  child.wait(timeout=10)


def test_signals_reach_the_child_and_not_the_template(template, tmp_path):
  out_path = tmp_path / "out.txt"
  with open(out_path, "wb") as out:
    child = template.start(_probe("sleep"), stdout=out.fileno())
  with pytest.raises(subprocess.TimeoutExpired):
    child.wait(timeout=0.5)
  assert child.poll() is None
  # The template ignores SIGTERM and SIGINT: a signal to its owner's group
  # must not take the children's parent away.
  os.kill(template.pid, signal.SIGTERM)
  os.kill(template.pid, signal.SIGINT)
  os.killpg(child.pid, signal.SIGTERM)
  assert child.wait(timeout=10) == -signal.SIGTERM
  second = template.start(_probe(0))
  assert second.wait(timeout=30) == 0


def test_an_uncaught_exception_exits_1_with_its_traceback(template, tmp_path):
  out_path = tmp_path / "out.txt"
  with open(out_path, "wb") as out:
    child = template.start(_probe("fail"), stdout=out.fileno(),
                           stderr=out.fileno())
  assert child.wait(timeout=30) == 1
  assert "ValueError: the probe failed" in out_path.read_text()


def test_children_die_with_the_template(template, tmp_path):
  with open(tmp_path / "out.txt", "wb") as out:
    child = template.start(_probe("sleep"), stdout=out.fileno())
  template.close()
  assert _gone(child.pid)
  assert child.poll() == -signal.SIGKILL


def test_a_child_cannot_change_what_a_process_reads_at_start(
    template, probe_env):
  with pytest.raises(ValueError, match="MALLOC_ARENA_MAX"):
    template.start(_probe(0), env=dict(probe_env, MALLOC_ARENA_MAX="7"))
  with pytest.raises(ValueError, match="python -m"):
    template.start(["/bin/true"])


def test_a_template_whose_import_fails_says_why(probe_env):
  with pytest.raises(template_lib.TemplateError,
                     match="ModuleNotFoundError.*no_such_module_here"):
    template_lib.Template(["no_such_module_here"], env=probe_env)


def test_the_supervisor_forks_restarts_and_stops_children(
    template, probe_env, tmp_path):
  logs = tmp_path / "logs"
  messages = []
  supervisor = processes.Supervisor(logdir=logs, template=template,
                                    restart_backoff_s=0.1,
                                    log=messages.append)
  first = supervisor.start("prober", _probe(5), restart=True, env=probe_env)
  stays = supervisor.start("sleeper", _probe("sleep"), env=probe_env)
  other = supervisor.start("plain", ["/bin/sleep", "60"])
  assert _parent(stays) == template.pid
  assert _parent(other) == os.getpid()  # Not `python -m`: started afresh.
  deadline = time.monotonic() + 30
  while (logs / "prober.log").read_text().count("heavy_imported_by") < 2:
    supervisor.poll()
    assert time.monotonic() < deadline, messages
    time.sleep(0.05)
  assert any("prober" in m and "code 5: atexit ran" in m for m in messages), (
      messages)
  # Started and restarted from the template, with its output in its log.
  reports = [json.loads(line) for line in
             (logs / "prober.log").read_text().splitlines()
             if line.startswith("{")]
  assert [r["heavy_imported_by"] for r in reports[:2]] == [template.pid] * 2
  assert reports[0]["pid"] == first != reports[1]["pid"]
  codes = supervisor.terminate_all()
  assert codes["sleeper"] == -signal.SIGTERM
  assert codes["plain"] == -signal.SIGTERM
  assert _gone(stays) and _gone(other)


def _parent(pid: int) -> int:
  with open(f"/proc/{pid}/stat") as f:
    return int(f.read().rsplit(")", 1)[1].split()[1])


def test_the_runs_template_imports_builds_no_tf_runtime():
  """What a local run's template imports (`impala_tf.runtime.preload`) must not
  start TF's runtime: its thread pools would not survive the fork."""
  probe = textwrap.dedent("""
      import impala_tf.runtime.preload
      from tensorflow.python.eager import context
      print(context.context()._initialized)
  """)
  result = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["False"]
  # The check itself: building anything (a constant) starts the runtime.
  started = subprocess.run(
      [sys.executable, "-c", probe.replace(
          "from tensorflow", "import tensorflow as tf; tf.constant(1)\n"
          "from tensorflow")],
      capture_output=True, text=True, timeout=300)
  assert started.stdout.split() == ["True"], started.stderr
