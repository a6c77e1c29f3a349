"""A template process: modules imported once, children forked from it.

Every TF process of a run (the learner, each actor) pays for `import
tensorflow` alone: about 180 MiB of private memory (Python's module objects,
TF's op and kernel registries) before it does anything. A child forked from
a process that has already imported TF shares those pages with that process
and with its siblings until one of them writes to a page (copy-on-write), so
the run holds them about once (docs/benchmarks.md, "Where the memory goes").

`Template(imports)` starts `python -m impala_tf.runtime.template`, which
imports the named modules, freezes Python's cyclic collector (`gc.freeze`:
the collector then never writes to the imported objects' headers) and
serves requests. `Template.start(argv, ...)` has it fork a child that runs
`argv` = `[python, "-m", module, *args]` the way `python -m` would
(`sys.argv`, `sys.orig_argv`, `__main__`, atexit handlers and non-daemon
threads at exit), with the caller's environment, working directory, stdout
and stderr, in a process group of its own, and killed by the kernel
(`PR_SET_PDEATHSIG`) if the template dies. The template itself ignores
SIGINT and SIGTERM (a signal to its owner's group must not take the
children's parent away mid-stop) and dies with its owner. `start` returns a
`ForkedChild`, which answers like `subprocess.Popen` (`pid`, `poll`, `wait`,
`returncode`).

A forked child shows its own command in `/proc/PID/cmdline` (`ps`, tools
that find a run's processes by their flags): the template is started with
`COMMAND_LINE_ROOM` bytes of command line, which each child overwrites with
its `argv` (cut to fit).

What a fresh process reads only when it starts comes from the template: the
environment variables of `_fixed_at_start` (glibc's `MALLOC_*`, `LD_*`,
`PYTHON*` and the `TF_*` that TF reads when it loads) must be the same for
the child as they were for the template, and `start` refuses a child whose
environment differs there.

The imported modules must not create TF's runtime (its thread pools do not
survive a fork): importing TF and building nothing is safe.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import os
import pickle
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import Mapping, Sequence

_PR_SET_PDEATHSIG = 1
_MADV_PAGEOUT = 21  # Linux 5.4.
_MAX_MESSAGE = 1 << 20
# Bytes of command line each forked child can show (module docstring).
COMMAND_LINE_ROOM = 16384
# Variables that take effect only when a process (or TF) starts.
_FIXED_PREFIXES = ("MALLOC_", "LD_", "PYTHON", "TF_", "GLIBC_TUNABLES",
                   "OMP_", "KMP_")
# TF_CONFIG is read by the program (the launcher's roles), not by TF's load.
_READ_LATER = ("TF_CONFIG",)


def _fixed_at_start(env: Mapping[str, str]) -> dict[str, str]:
  """The part of `env` a forked child cannot change (module docstring)."""
  return {k: v for k, v in env.items()
          if k.startswith(_FIXED_PREFIXES) and k not in _READ_LATER}


class TemplateError(RuntimeError):
  """The template process is gone or refused a request."""


class ForkedChild:
  """A child forked by a `Template`; answers like `subprocess.Popen`."""

  def __init__(self, template: "Template", pid: int):
    self._template = template
    self.pid = pid
    self.returncode: int | None = None
    self.stderr = None  # Popen's attribute; streams are the caller's.

  def poll(self) -> int | None:
    if self.returncode is None:
      self.returncode = self._template._returncode(self.pid)  # pylint: disable=protected-access
    return self.returncode

  def wait(self, timeout: float | None = None) -> int:
    if self.returncode is None:
      self.returncode = self._template._wait(self.pid, timeout)  # pylint: disable=protected-access
      if self.returncode is None:
        raise subprocess.TimeoutExpired(f"forked child {self.pid}", timeout)
    return self.returncode


class Template:
  """Owns a template process (see the module docstring).

  Use it from a long-lived thread (the template gets `PR_SET_PDEATHSIG`
  from the thread that starts it). `close()` ends the template; children
  still running are then killed by the kernel.

  Args:
    imports: module names the template imports, in order.
    env: the template's environment (default: this process's).
    label: words added to the template's command line (e.g. the run
      directory, so the run's processes can all be found by it).
  """

  def __init__(self, imports: Sequence[str],
               env: Mapping[str, str] | None = None, label: str = ""):
    self.imports = list(imports)
    self._env = dict(os.environ if env is None else env)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = os.getpid()
    self._process = subprocess.Popen(
        [sys.executable, "-m", "impala_tf.runtime.template",
         str(theirs.fileno()), label, " " * COMMAND_LINE_ROOM, *self.imports],
        env=self._env, stdin=subprocess.DEVNULL, pass_fds=[theirs.fileno()],
        start_new_session=True, preexec_fn=lambda: die_with_parent(parent))
    theirs.close()
    self._socket = ours
    self._lock = threading.Condition()
    self._exited: dict[int, int] = {}
    self._started: dict[int, int] = {}
    self._next_id = 0
    self._closed = False
    self._error: str | None = None
    self._reader = threading.Thread(target=self._read, daemon=True,
                                    name="template-reader")
    self._reader.start()
    with self._lock:
      self._lock.wait_for(lambda: "ready" in self._started or
                          self._error is not None, timeout=600)
      if "ready" not in self._started:
        raise TemplateError(self._error or "the template did not start "
                            "within 600 s")

  @property
  def pid(self) -> int:
    return self._process.pid

  def refusal(self, argv: Sequence[str],
              env: Mapping[str, str]) -> str | None:
    """Why `start` would refuse `argv` with `env`, or None if it forks it:
    only `python -m module ...` commands whose start-up variables (module
    docstring) are the template's."""
    if not (len(argv) >= 3 and argv[0] == sys.executable and
            argv[1] == "-m"):
      return (f"the template forks `{sys.executable} -m module ...` "
              f"commands, not {list(argv)!r}")
    ours, theirs = _fixed_at_start(self._env), _fixed_at_start(env)
    if ours != theirs:
      differ = {k for k, _ in set(ours.items()) ^ set(theirs.items())}
      return ("a forked child cannot change variables read when a process "
              f"starts; these differ from the template's: {sorted(differ)}")
    return None

  def start(self, argv: Sequence[str], *, stdout: int | None = None,
            stderr: int | None = None, env: Mapping[str, str] | None = None,
            cwd: str | None = None) -> ForkedChild:
    """Forks a child that runs `argv` (`python -m module args`); `stdout`
    and `stderr` are file descriptors (default: this process's)."""
    env = dict(os.environ if env is None else env)
    refusal = self.refusal(argv, env)
    if refusal is not None:
      raise ValueError(refusal)
    with self._lock:
      request_id = self._next_id
      self._next_id += 1
    request = dict(id=request_id, argv=list(argv), env=env,
                   cwd=cwd or os.getcwd())
    fds = [1 if stdout is None else stdout, 2 if stderr is None else stderr]
    try:
      socket.send_fds(self._socket, [pickle.dumps(request)], fds)
    except OSError as e:
      raise TemplateError(f"the template process is gone ({e})") from None
    with self._lock:
      self._lock.wait_for(lambda: request_id in self._started or
                          self._error is not None, timeout=60)
      if request_id not in self._started:
        raise TemplateError(self._error or "the template did not fork "
                            "within 60 s")
      return ForkedChild(self, self._started.pop(request_id))

  def _read(self):
    """Records what the template says: started children, exit codes."""
    while True:
      try:
        message = self._socket.recv(_MAX_MESSAGE)
      except OSError as e:
        message, error = b"", str(e)
      else:
        error = "the template process exited"
      if not message:
        with self._lock:
          self._error = self._error or error
          self._lock.notify_all()
        return
      kind, key, value = pickle.loads(message)
      with self._lock:
        if kind == "exited":
          self._exited[key] = value
        elif kind == "started":
          self._started[key] = value
        else:  # "failed": the template could not import its modules.
          self._error = value
        self._lock.notify_all()

  def _returncode(self, pid: int) -> int | None:
    with self._lock:
      if pid not in self._exited and self._error is not None:
        # The template is gone, and with it (PR_SET_PDEATHSIG) the child.
        return -signal.SIGKILL
      return self._exited.get(pid)

  def _wait(self, pid: int, timeout: float | None) -> int | None:
    deadline = None if timeout is None else time.monotonic() + timeout
    with self._lock:
      while pid not in self._exited and self._error is None:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
          return None
        self._lock.wait(left)
    return self._returncode(pid)

  def close(self):
    """Ends the template (its children are killed by the kernel)."""
    if self._closed:
      return
    self._closed = True
    self._socket.shutdown(socket.SHUT_RDWR)
    try:
      self._process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self._process.kill()
      self._process.wait()
    self._reader.join(timeout=5)
    self._socket.close()


def die_with_parent(parent_pid: int):
  """Between fork and exec (or in a forked child): the kernel kills this
  process when its parent dies; exits if the parent is gone already."""
  libc = ctypes.CDLL(None, use_errno=True)
  if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
    os._exit(127)  # pylint: disable=protected-access
  if os.getppid() != parent_pid:
    os._exit(127)  # pylint: disable=protected-access


def _set_command_line(argv: Sequence[str]):
  """Shows `argv` in this process's /proc/PID/cmdline: overwrites the
  memory the kernel reads it from (the original argument strings; Python
  keeps copies), NUL-separated, cut to fit, the rest NUL."""
  with open("/proc/self/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end.
  data = b"".join(a.encode(errors="replace") + b"\0" for a in argv)
  data = data[:end - start - 1]
  ctypes.memmove(start, data.ljust(end - start, b"\0"), end - start)


# ------------------------------------------------------- the template process


def _release_import_pages():
  """Gives back what only the imports needed: glibc's free heap memory
  (`malloc_trim`), and the pages of shared libraries touched only while
  importing (their start-up code and tables: about 250 MiB for TF), with
  MADV_PAGEOUT on every file-backed mapping. The kernel reclaims only clean
  file pages mapped by this process alone and keeps anonymous memory (the
  imported state, which the children share) without swap; forked children
  fault in the library pages they run. A kernel before 5.4 refuses the
  advice (EINVAL) and the pages stay: a smaller saving, nothing wrong."""
  libc = ctypes.CDLL(None, use_errno=True)
  libc.malloc_trim(0)
  libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
  with open("/proc/self/maps") as f:
    mappings = [line.split() for line in f]
  for fields in mappings:
    if len(fields) < 6 or not fields[5].startswith("/"):
      continue  # Anonymous memory, the stack, [vdso] and the like.
    start, end = (int(x, 16) for x in fields[0].split("-"))
    libc.madvise(start, end - start, _MADV_PAGEOUT)


def _serve(sock: socket.socket, imports: Sequence[str]):
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  try:
    for name in imports:
      importlib.import_module(name)
  except BaseException:  # pylint: disable=broad-except
    # Said to the owner, which raises it; the template has nothing to serve.
    sock.send(pickle.dumps(("failed", None, "the template could not import "
                            "its modules:\n" + traceback.format_exc())))
    return
  gc.collect()
  gc.freeze()
  _release_import_pages()
  wake_r, wake_w = os.pipe()
  os.set_blocking(wake_w, False)
  os.set_blocking(wake_r, False)
  signal.signal(signal.SIGCHLD, lambda *_: None)
  signal.set_wakeup_fd(wake_w)
  sock.send(pickle.dumps(("started", "ready", os.getpid())))
  while True:
    try:
      ready = select.select([sock, wake_r], [], [])[0]
    except InterruptedError:
      ready = []
    if wake_r in ready:
      while True:
        try:
          if not os.read(wake_r, 4096):
            break
        except BlockingIOError:
          break
    _reap(sock)
    if sock not in ready:
      continue
    message, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 2)
    if not message:
      return  # The owner closed the socket or died.
    request = pickle.loads(message)
    pid = os.fork()
    if pid == 0:
      os.close(wake_r)
      os.close(wake_w)
      _become(sock, request, fds)
    # Also in the child (`_become`): whichever runs first, the child's
    # group exists before the owner hears of its pid.
    try:
      os.setpgid(pid, pid)
    except (ProcessLookupError, PermissionError):
      pass  # The child got there first (and may have exited since).
    for fd in fds:
      os.close(fd)
    sock.send(pickle.dumps(("started", request["id"], pid)))


def _reap(sock: socket.socket):
  while True:
    try:
      pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
      return
    if pid == 0:
      return
    sock.send(pickle.dumps(("exited", pid, os.waitstatus_to_exitcode(status))))


def _become(sock: socket.socket, request: dict, fds: Sequence[int]):
  """In the forked child: runs the request's command as `python -m`; never
  returns."""
  code = 1
  try:
    os.setpgid(0, 0)
    parent = os.getppid()
    die_with_parent(parent)
    signal.set_wakeup_fd(-1)
    for sig, handler in ((signal.SIGINT, signal.default_int_handler),
                         (signal.SIGTERM, signal.SIG_DFL),
                         (signal.SIGCHLD, signal.SIG_DFL)):
      signal.signal(sig, handler)
    sock.close()
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
      if fd > 2:
        os.close(fd)
    _set_command_line(request["argv"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    sys.orig_argv = list(argv)
    sys.argv = [argv[0], *argv[3:]]  # run_module puts the module's path first.
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    code = 0
  except SystemExit as e:
    if e.code is None:
      code = 0
    elif isinstance(e.code, int):
      code = e.code
    else:
      print(e.code, file=sys.stderr)
      code = 1
  except BaseException:  # pylint: disable=broad-except
    # What the interpreter does with an uncaught exception.
    traceback.print_exc()
    code = 1
  finally:
    # What the interpreter does at exit: wait for non-daemon threads, run
    # atexit handlers, flush.
    threading._shutdown()  # pylint: disable=protected-access
    atexit._run_exitfuncs()  # pylint: disable=protected-access
    for stream in (sys.stdout, sys.stderr):
      try:
        stream.flush()
      except (OSError, ValueError):
        pass  # A closed stream has nothing left to write.
    os._exit(code)  # pylint: disable=protected-access


if __name__ == "__main__":
  _set_command_line(sys.orig_argv[:4] + ["for", sys.argv[2]] + sys.argv[4:])
  _serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[4:])
