"""One run per run directory: an exclusive lock file, `LOCK`, in `--logdir`.

The process that starts a run (the launcher in local mode, the learner in
cluster mode, the one process in thread mode) takes the lock before anything
else starts and releases it on every way out. The lock file holds the host,
pid, start time and a random token; the token is passed to the run's own
child processes (`IMPALA_TF_RUN_LOCK`), which thereby belong to the run
that holds it. A lock left by a process that is gone, on this host, is taken
over with a note; one held from another host needs `--force_unlock` (we
cannot tell whether that process still runs).

What the lock guarantees depends on the filesystem:

* local disks: creation is atomic (`O_CREAT | O_EXCL`), so of two launches
  exactly one gets the lock;
* NFS (v3 and later): `O_EXCL` creation is atomic on the server, so the same
  holds; a client that dies leaves its lock, which another host can only
  take with `--force_unlock`;
* `gs://` and other object stores (through `tf.io.gfile`): there is no
  atomic create-if-absent, so the lock is written, then read back; two
  launches within the same second or so can both believe they hold it. It
  still refuses every later launch on a busy directory.
"""

import json
import os
import secrets
import socket
import time
from typing import Optional

from impala_tf.config import errors

LOCK_FILE = "LOCK"
TOKEN_ENV = "IMPALA_TF_RUN_LOCK"


class RunDirectoryBusyError(errors.RunError):
  """Another run holds the run directory's lock."""


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # It exists, under another user.
  return True


def _describe(holder: dict) -> str:
  started = time.strftime("%Y-%m-%d %H:%M:%S",
                          time.localtime(holder.get("start_time", 0)))
  return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
          f"{started}")


class RunLock:
  """The lock of one run directory (see the module docstring)."""

  def __init__(self, logdir: str):
    self.logdir = logdir
    self.path = os.path.join(logdir, LOCK_FILE)
    self.token: Optional[str] = None
    self.owned = False

  def _read(self) -> Optional[dict]:
    try:
      if "://" in self.path:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        with tf.io.gfile.GFile(self.path) as f:
          return json.loads(f.read() or "{}")
      with open(self.path) as f:
        return json.loads(f.read() or "{}")
    except (FileNotFoundError, json.JSONDecodeError):
      return None
    except OSError as e:
      if "://" in self.path and "NotFound" in type(e).__name__:
        return None
      raise

  def _create(self, record: dict) -> bool:
    """Creates the lock file holding `record`; False if it exists."""
    text = json.dumps(record)
    if "://" in self.path:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      if tf.io.gfile.exists(self.path):
        return False
      with tf.io.gfile.GFile(self.path, "w") as f:
        f.write(text)
      return (self._read() or {}).get("token") == record["token"]
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w") as f:
      f.write(text)
    return True

  def _remove(self):
    if "://" in self.path:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.io.gfile.remove(self.path)
    else:
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass  # Someone else removed it first; the create below decides.

  def acquire(self, force: bool = False, log=print) -> "RunLock":
    """Takes the lock, or joins it when this process belongs to the run
    that holds it (its token is in our environment).

    Raises:
      RunDirectoryBusyError: another run holds it (the message names it).
    """
    inherited = os.environ.get(TOKEN_ENV)
    holder = self._read()
    if holder is not None and inherited and holder.get("token") == inherited:
      self.token = inherited  # Our parent's lock: we are part of its run.
      return self
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "start_time": time.time(), "token": secrets.token_hex(16)}
    for _ in range(3):
      if self._create(record):
        self.token, self.owned = record["token"], True
        os.environ[TOKEN_ENV] = self.token
        return self
      holder = self._read()
      if holder is None:
        continue  # Released in between: try again.
      same_host = holder.get("host") == record["host"]
      pid = int(holder.get("pid", 0))
      # A lock naming this very process with a token it never had was left
      # by a predecessor with the same pid: pid 1 of a restarted container
      # on the same host name.
      ended = not _pid_alive(pid) or pid == os.getpid()
      if force or (same_host and ended):
        log(f"Taking over the lock of {self.logdir}: it was held by "
            f"{_describe(holder)}, "
            + ("--force_unlock given." if force else "which has ended."))
        self._remove()
        continue
      hint = ("" if same_host else
              " If that process is gone, pass --force_unlock.")
      raise RunDirectoryBusyError(
          f"{self.logdir} is in use by another run ({_describe(holder)}); "
          f"give this run another --logdir.{hint}")
    raise RunDirectoryBusyError(
        f"Could not take the lock of {self.logdir}: another launch keeps "
        "taking it.")

  def release(self):
    """Removes the lock if this process took it (and it is still ours)."""
    if not self.owned:
      return
    holder = self._read()
    if holder is not None and holder.get("token") == self.token:
      self._remove()
    self.owned = False
