"""Child processes of the launcher: start, restart, stop; no orphans.

Each child runs in its own process group (its own session), so a signal to
the group reaches its helpers too (e.g. the real program under ``unshare``,
which itself ignores SIGTERM), and terminal Ctrl-C reaches only the launcher,
which then stops children in order. Each child also gets
``PR_SET_PDEATHSIG=SIGKILL``: if the launcher dies without cleaning up (even
from SIGKILL), the kernel kills the child.

Output: children inherit the launcher's stdout; their stderr passes through
the supervisor line by line, which keeps each child's last error line: the
cause of a crash. With a ``logdir``, each child's stdout and stderr go to
``logdir/<name>.log`` (appended across restarts) and the cause is that
file's last line.

A child killed by a signal is reported by where it was: "actor 0 killed
by SIGSEGV in dmlab30/env.py reset (line 142)", the innermost Python frame
of the crashing thread in the fault dump Python writes to stderr
(`faulthandler`, which absl's `app.run` enables), not the dump's last line.

Crash loops: when restartable children exit with the same cause
``crash_loop_count`` times within ``crash_loop_window_s`` (5 in 5 minutes
by default), restarting them again would not help; ``run_until`` then
stops every child and reports that cause. With a ``status_path``, the
restarts, the children waiting to restart and the last cause are written
there (JSON) whenever they change, for the learner to show.

Forked children: with a ``template`` (`template.Template`), a child whose
command is ``python -m module ...`` is forked from the template instead of
started afresh, and shares the memory of what the template imported (TF);
it gets the same process group, streams and restarts, and
``PR_SET_PDEATHSIG`` towards the template, which dies with the launcher.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, NamedTuple, Sequence

from impala_tf.runtime import template as template_lib


@dataclasses.dataclass
class _Child:
  name: str
  argv: list[str]
  env: dict[str, str] | None
  restart: bool
  grace_s: float | None = None  # None: the supervisor's.
  log_path: str | None = None  # None: the supervisor's logdir/<name>.log.
  # Its "impala_tf.launch: error: ..." lines are kept for the supervisor's
  # owner to report (`cause`), not copied to stderr: said once, last.
  hold_error_line: bool = False
  popen: subprocess.Popen | template_lib.ForkedChild | None = None
  started_at: float = 0.0
  restarts: int = 0
  backoff_s: float = 0.0
  restart_at: float | None = None
  returncode: int | None = None
  # The last non-empty lines it wrote to stderr (without a logdir).
  last_errors: collections.deque = dataclasses.field(
      default_factory=lambda: collections.deque(maxlen=_TAIL_LINES))
  reader: threading.Thread | None = None


class RunResult(NamedTuple):
  """How ``run_until`` ended: the main child's exit code, or the signal that
  stopped the launcher (then ``returncode`` is None), or a crash loop
  (``crash_loop`` is its cause; ``returncode`` is None)."""
  returncode: int | None
  signal: int | None
  crash_loop: str | None = None


_ERROR_PREFIX = "impala_tf.launch: error: "

# Lines of a child's output kept to explain its end: enough for a fault
# dump of the crashing thread (Python prints at most 100 frames a thread).
_TAIL_LINES = 400
_TAIL_BYTES = 64 * 1024


class Supervisor:
  """Starts named child processes and stops all of them together.

  PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so
  use a Supervisor from a long-lived thread (the main thread).
  """

  def __init__(self, *, logdir: str | os.PathLike | None = None,
               grace_s: float = 5.0, restart_backoff_s: float = 1.0,
               max_restart_backoff_s: float = 30.0,
               stable_after_s: float = 60.0,
               crash_loop_count: int = 5, crash_loop_window_s: float = 300.0,
               status_path: str | None = None,
               template: template_lib.Template | None = None,
               log: Callable[[str], None] = print):
    self._children: dict[str, _Child] = {}
    self._template = template
    self._logdir = os.fspath(logdir) if logdir is not None else None
    self.grace_s = grace_s
    self.restart_backoff_s = restart_backoff_s
    self.max_restart_backoff_s = max_restart_backoff_s
    self.stable_after_s = stable_after_s
    self.crash_loop_count = crash_loop_count
    self.crash_loop_window_s = crash_loop_window_s
    self.crash_loop: str | None = None
    self._failures: collections.deque = collections.deque()
    self._status_path = status_path
    self._log = log
    self._stop_signal: int | None = None

  # ------------------------------------------------------------- children

  def start(self, name: str, argv: Sequence[str], *, restart: bool = False,
            env: Mapping[str, str] | None = None,
            grace_s: float | None = None,
            log_path: str | os.PathLike | None = None,
            hold_error_line: bool = False) -> int:
    """Starts ``argv`` as child ``name``; returns its pid. With
    ``restart=True`` it is restarted (with backoff) whenever it exits while
    the supervisor runs (``poll``/``run_until``). ``grace_s``: how long it
    may take to stop after SIGTERM (default: the supervisor's).
    ``log_path``: the file its stdout and stderr are appended to (default
    ``logdir/<name>.log`` with a logdir, else stderr through this
    process). ``hold_error_line``: its own one-line errors are not copied to
    stderr but left for the caller to report through ``cause``."""
    if name in self._children and self._alive(self._children[name]):
      raise ValueError(f"a child named {name!r} is already running")
    if not argv:
      raise ValueError(f"child {name!r}: empty command line")
    child = _Child(name, list(argv), dict(env) if env is not None else None,
                   restart, grace_s=grace_s, backoff_s=self.restart_backoff_s,
                   log_path=os.fspath(log_path) if log_path else None,
                   hold_error_line=hold_error_line)
    self._children[name] = child
    self._spawn(child)
    return child.popen.pid

  def _log_path(self, child: _Child) -> str | None:
    if child.log_path is not None:
      return child.log_path
    if self._logdir is not None:
      return os.path.join(self._logdir, f"{child.name}.log")
    return None

  def _spawn(self, child: _Child):
    out = None
    path = self._log_path(child)
    if path is not None:
      os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
      out = open(path, "ab")
    try:
      child.popen = self._fork(child, out)
      if child.popen is None:
        parent = os.getpid()
        child.popen = subprocess.Popen(
            child.argv, env=child.env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT if out else subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: template_lib.die_with_parent(parent))
    finally:
      if out is not None:
        out.close()  # The child holds its own descriptor.
    child.started_at = time.monotonic()
    child.restart_at = None
    child.returncode = None
    child.last_errors.clear()
    if out is None:
      child.reader = threading.Thread(
          target=self._forward_stderr, args=(child, child.popen.stderr),
          daemon=True, name=f"stderr-{child.name}")
      child.reader.start()

  def _fork(self, child: _Child, out) -> template_lib.ForkedChild | None:
    """Forks the child from the template when it can (`python -m` commands
    whose start-up variables match the template's); else None."""
    env = os.environ if child.env is None else child.env
    if (self._template is None or
        self._template.refusal(child.argv, env) is not None):
      return None
    read_end = None
    if out is not None:
      stdout = stderr = out.fileno()
    else:
      stdout, (read_end, stderr) = 1, os.pipe()
    try:
      forked = self._template.start(child.argv, stdout=stdout, stderr=stderr,
                                    env=env)
    except template_lib.TemplateError as e:
      self._log(f"supervisor: could not fork {child.name} from the template "
                f"({e}); starting it afresh")
      if read_end is not None:
        os.close(read_end)
      return None
    finally:
      if read_end is not None:
        os.close(stderr)
    if read_end is not None:
      forked.stderr = os.fdopen(read_end, "rb")
    return forked

  @staticmethod
  def _forward_stderr(child: _Child, stream):
    """Copies a child's stderr to ours, line by line, keeping its last
    non-empty lines."""
    for raw in iter(stream.readline, b""):
      line = raw.decode(errors="replace").rstrip()
      if not (child.hold_error_line and line.startswith(_ERROR_PREFIX)):
        sys.stderr.buffer.write(raw)
        sys.stderr.flush()
      if line.strip():
        child.last_errors.append(line)
    stream.close()

  def _cause(self, child: _Child, code: int) -> str:
    """Why a child exited: where a signal killed it ("killed by SIGSEGV in
    dmlab30/env.py reset (line 142)"), else its last error line, else its
    exit status."""
    if child.reader is not None:
      child.reader.join(timeout=2.0)  # The rest of its stderr.
    lines = list(child.last_errors)
    if self._log_path(child) is not None:
      lines = tail_lines(self._log_path(child))
    if code < 0:
      return killed_by(code, lines)
    line = lines[-1].strip() if lines else ""
    line = line[len(_ERROR_PREFIX):] if line.startswith(_ERROR_PREFIX) else line
    return line or f"exit {_describe(code)}"

  def cause(self, name: str) -> str:
    """Why child `name` exited (it has): its last error line, where a
    signal killed it, or its exit status (see `_cause`)."""
    child = self._children[name]
    return self._cause(child, child.popen.returncode)

  @staticmethod
  def _says(child: _Child, code: int, cause: str) -> str:
    """How the supervisor says a child ended: "actor 0 (pid 7) killed by
    SIGSEGV in ..." or "learner (pid 7) exited with code 1: <its line>"."""
    who = f"{child.name.replace('_', ' ')} (pid {child.popen.pid})"
    if code < 0:
      return f"{who} {cause}"
    return f"{who} exited with {_describe(code)}: {cause}"

  @staticmethod
  def _alive(child: _Child) -> bool:
    return child.popen is not None and child.popen.poll() is None

  def pid(self, name: str) -> int | None:
    """The running pid of child ``name``, or None if it is not running."""
    child = self._children[name]
    return child.popen.pid if self._alive(child) else None

  def poll(self) -> dict[str, int]:
    """Reaps exited children and restarts the restartable ones when their
    backoff is over. Returns {name: exit code} of children that exited for
    good since the last call."""
    ended = {}
    now = time.monotonic()
    for child in self._children.values():
      if child.popen is None or child.returncode is not None and not child.restart:
        continue
      if child.restart_at is not None:
        if now >= child.restart_at and self._stop_signal is None:
          child.restarts += 1
          self._spawn(child)
          self._log(f"supervisor: restarted {child.name} "
                    f"(pid {child.popen.pid}, restart {child.restarts})")
        continue
      code = child.popen.poll()
      if code is None:
        continue
      child.returncode = code
      # Exit code 0 is a clean finish (an actor whose queue closed): final.
      if child.restart and code != 0 and self._stop_signal is None:
        cause = self._cause(child, code)
        says = self._says(child, code, cause)
        if self._is_crash_loop(now, cause):
          # A signal's cause names no child, so actors killed at the same
          # place count as one error; the run's last line says which one.
          self.crash_loop = (f"{child.name.replace('_', ' ')} {cause}"
                             if code < 0 else cause)
          self._log(f"supervisor: {says}; that is "
                    f"{self.crash_loop_count} times in "
                    f"{self.crash_loop_window_s:g} s, so restarting again "
                    "would not help")
          ended[child.name] = code
          continue
        if now - child.started_at >= self.stable_after_s:
          child.backoff_s = self.restart_backoff_s  # It had been healthy.
        child.restart_at = now + child.backoff_s
        self._log(f"supervisor: {says}; restarting in "
                  f"{child.backoff_s:.1f}s")
        child.backoff_s = min(child.backoff_s * 2, self.max_restart_backoff_s)
        self._write_status(cause)
      else:
        ended[child.name] = code
    return ended

  def _is_crash_loop(self, now: float, cause: str) -> bool:
    self._failures.append((now, cause))
    while self._failures and now - self._failures[0][0] > (
        self.crash_loop_window_s):
      self._failures.popleft()
    return sum(c == cause for _, c in self._failures) >= self.crash_loop_count

  def _write_status(self, cause: str):
    """The restarts so far, for the learner (see the module docstring)."""
    if self._status_path is None:
      return
    restarting = sorted(c.name for c in self._children.values()
                        if c.restart_at is not None)
    status = {"restarts": sum(c.restarts for c in self._children.values())
                          + len(restarting),
              "restarting": restarting, "last_error": cause,
              "time": time.time()}
    temporary = f"{self._status_path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
      json.dump(status, f)
    os.replace(temporary, self._status_path)

  # ------------------------------------------------------------- stopping

  def terminate_all(self) -> dict[str, int]:
    """SIGTERM to every child's process group, SIGKILL to those still alive
    after their grace period. Returns {name: exit code}."""
    self.terminate(list(self._children))
    return {c.name: c.popen.returncode for c in self._children.values()
            if c.popen is not None}

  def terminate(self, names: Sequence[str]) -> dict[str, int]:
    """Stops children ``names`` as `terminate_all` does the others: not
    restarted, SIGTERM, SIGKILL after each one's grace period. Returns
    {name: exit code} of those that ran."""
    children = [self._children[name] for name in names]
    for child in children:
      child.restart = False
      child.restart_at = None
    running = [c for c in children if self._alive(c)]
    for child in running:
      _signal_group(child.popen.pid, signal.SIGTERM)
    signalled = time.monotonic()
    for child in running:
      grace_s = self.grace_s if child.grace_s is None else child.grace_s
      try:
        child.popen.wait(
            timeout=max(signalled + grace_s - time.monotonic(), 0))
      except subprocess.TimeoutExpired:
        self._log(f"supervisor: {child.name} (pid {child.popen.pid}) ignored "
                  f"SIGTERM for {grace_s:.0f}s; killing it")
    for child in running:
      # SIGKILL the group even when the leader exited: helpers it started in
      # its group may still run.
      _signal_group(child.popen.pid, signal.SIGKILL)
      child.popen.wait()
    return {c.name: c.popen.returncode for c in children
            if c.popen is not None}

  def send_signal(self, name: str, sig: int) -> None:
    """Sends ``sig`` to child ``name``'s process group, if it runs (e.g.
    SIGTERM to ask it to stop, without waiting)."""
    child = self._children[name]
    if self._alive(child):
      _signal_group(child.popen.pid, sig)

  def run_until(self, main: str, *, poll_interval_s: float = 0.1,
                handle_signals: bool = True) -> RunResult:
    """Supervises until child ``main`` exits or SIGINT/SIGTERM arrives, then
    terminates every other child and returns how it ended."""
    previous = {}
    if handle_signals:
      def on_signal(signum, frame):  # pylint: disable=unused-argument
        self._stop_signal = signum
      for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    try:
      while self._stop_signal is None:
        ended = self.poll()
        if self.crash_loop is not None:
          self.terminate_all()
          return RunResult(None, None, self.crash_loop)
        if main in ended:
          self.terminate_all()
          return RunResult(ended[main], None)
        time.sleep(poll_interval_s)
      self._log(f"supervisor: got {signal.Signals(self._stop_signal).name}; "
                "stopping all children")
      self.terminate_all()
      return RunResult(None, self._stop_signal)
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)


def _signal_group(pgid: int, sig: int):
  try:
    os.killpg(pgid, sig)
  except ProcessLookupError:
    pass  # The whole group is gone already: that is what we wanted.


def find_processes(marker: str, role: str | None = None
                   ) -> dict[int, str]:
  """{pid: command line} of this machine's processes (other than this one)
  whose command line contains ``marker`` (a run directory, say), and with
  ``role`` only a launcher's children of that role (``--job=learner``,
  ``--job=actor``). Arguments in the command line are joined by spaces."""
  found = {}
  for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) == os.getpid():
      continue
    try:
      with open(f"/proc/{entry}/cmdline", "rb") as f:
        cmdline = f.read().decode(errors="replace").replace("\0", " ")
    except OSError:
      continue  # The process ended.
    if marker in cmdline and (role is None or f"--job={role}" in cmdline):
      found[int(entry)] = cmdline.strip()
  return found


def tail_lines(path: str, max_bytes: int = _TAIL_BYTES) -> list[str]:
  """The non-empty lines in the last `max_bytes` of a text file, without
  their line ends ([] if it cannot be read)."""
  try:
    with open(path, "rb") as f:
      f.seek(max(0, os.path.getsize(path) - max_bytes))
      text = f.read().decode(errors="replace")
  except OSError:
    return []
  return [line.rstrip() for line in text.split("\n") if line.strip()]


def last_line(path: str) -> str:
  """The last non-empty line of a text file ("" if none)."""
  lines = tail_lines(path, 4096)
  return lines[-1].strip() if lines else ""


# Python's fault dump (faulthandler): the crashing thread's frames, the
# most recent first, under "Current thread 0x... (most recent call first):"
# (or "Stack (most recent call first):" when threads are not listed).
_CRASHING_THREAD = re.compile(
    r"^(Current thread 0x[0-9a-f]+|Stack) \(most recent call first\):$")
_FRAME = re.compile(r'^\s+File "(?P<path>.+)", line (?P<line>\d+) in '
                    r"(?P<function>.+)$")


def fault_location(lines: Sequence[str]) -> str | None:
  """Where the last fault dump in `lines` says the crash happened:
  "dmlab30/env.py reset (line 142)", the innermost Python frame of the
  crashing thread (its path from its top-level package on); None if there
  is no such dump."""
  for start in range(len(lines) - 1, -1, -1):
    if _CRASHING_THREAD.match(lines[start].strip()):
      break
  else:
    return None
  for line in lines[start + 1:]:
    frame = _FRAME.match(line)
    if frame is None:
      return None  # The thread has no Python frame.
    return (f"{_short_path(frame['path'])} {frame['function']} "
            f"(line {frame['line']})")
  return None


def _short_path(path: str) -> str:
  """`path` from its top-level package on ("dmlab30/env.py" rather than
  where the package is installed): the directories above the file that
  are packages (hold an `__init__.py`)."""
  directory, parts = os.path.dirname(path), [os.path.basename(path)]
  while directory and os.path.isfile(os.path.join(directory, "__init__.py")):
    parts.insert(0, os.path.basename(directory))
    directory = os.path.dirname(directory)
  return "/".join(parts)


def killed_by(code: int, lines: Sequence[str]) -> str:
  """What ended a child that exit code `code` (< 0) says a signal killed:
  "killed by SIGSEGV in dmlab30/env.py reset (line 142)", or "killed by
  SIGKILL" where its output (`lines`) has no fault dump."""
  text = f"killed by {_signal_name(-code)}"
  where = fault_location(lines)
  return f"{text} in {where}" if where else text


def _signal_name(number: int) -> str:
  try:
    return signal.Signals(number).name
  except ValueError:
    return f"signal {number}"  # A real-time signal has no name.


def _describe(code: int) -> str:
  if code < 0:
    return f"signal {_signal_name(-code)}"
  return f"code {code}"
