"""The learner's TF server and the actors' connection to it.

The learner process runs the only TF server of a run (job ``learner``, task 0).
Actors do not run servers: each connects its eager context to the learner
(``experimental_connect_to_host``) and places its enqueue and weight-read ops
on the learner's CPU device, so the queue and the published weights live in
the learner process and TF's gRPC runtime carries the tensors.

Security: a TF server listens on all interfaces (``*:PORT`` in ``ss -ltn``,
whatever host the ClusterSpec names) and has no authentication; whoever reaches
the port can run any op on the learner host. See ``isolation.py``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from typing import Callable

# TensorFlow is imported inside the functions that use it: the launcher
# picks ports and reports LearnerUnreachableError without starting TF.

LEARNER_JOB = "learner"
# This process's own CPU, for ops that must not run on the learner's device.
LOCAL_CPU = "/job:localhost/replica:0/task:0/device:CPU:0"
_STREAMING_ENQUEUE_FLAG = "TF_ENABLE_EAGER_CLIENT_STREAMING_ENQUEUE"


class LearnerUnreachableError(ConnectionError):
  """The learner's TF server did not answer within the allowed time."""


class LearnerLostError(ConnectionError):
  """A connected learner stopped answering (it crashed or was killed)."""


# What a remote op's error says when the learner's process is gone, in the
# words TF and gRPC use for it: a dead peer surfaces as UnavailableError,
# CancelledError or AbortedError, but also as a TypeError ("Binding inputs to
# tf.function failed due to recvmsg:Connection reset by peer") or an
# InternalError around a gRPC status.
_LOST_PATTERNS = ("connection reset", "connection refused", "socket closed",
                  "failed to connect", "recvmsg", "sendmsg", "broken pipe",
                  "remote target has been disconnected", "connection aborted",
                  "unavailable", "end of file",
                  # The learner's server no longer knows this actor's eager
                  # context: it restarted, or dropped the context after a
                  # long silence (both processes stopped, say). Seen as
                  # "Unable to find a context_id matching the specified
                  # one ... Perhaps the worker was restarted".
                  "unable to find a context_id")


def is_learner_lost(error: BaseException) -> bool:
  """Whether `error`, raised by an op on the learner, means the learner's
  process is gone (and not a bug to report with its traceback)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError)):
    return True
  if isinstance(error, (tf.errors.CancelledError, tf.errors.InternalError,
                        tf.errors.UnknownError, TypeError)):
    text = str(error).lower()
    return any(pattern in text for pattern in _LOST_PATTERNS)
  return False


def free_port(host: str = "127.0.0.1") -> int:
  """A TCP port that was free a moment ago (the OS picks it).

  Another process may take it before it is used; launchers bind it right away.
  """
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind((host, 0))
    return s.getsockname()[1]


def learner_device(task: int = 0) -> str:
  """The CPU device of the learner task, where shared resources live."""
  return f"/job:{LEARNER_JOB}/replica:0/task:{task}/device:CPU:0"


@dataclasses.dataclass(frozen=True)
class LearnerServer:
  """The TF server of the learner process (job ``learner``, task 0).

  Use ``LearnerServer.start(port)``; there is one per process.
  """
  host: str
  port: int

  @property
  def address(self) -> str:
    return f"{self.host}:{self.port}"

  @property
  def device(self) -> str:
    return learner_device(0)

  @classmethod
  def start(cls, port: int, host: str = "127.0.0.1") -> "LearnerServer":
    """Starts the server in this process and points the eager context at it.

    Why not ``tf.distribute.Server``: a standalone server has its own devices
    and resource managers, which this process's eager context cannot see, and
    reaching it from here would push every dequeued batch through gRPC to
    ourselves. ``experimental_connect_to_cluster`` with a cluster that lists
    only this task starts the gRPC server *inside* the eager context: ops the
    learner places on ``self.device`` run locally, and the same resources are
    reachable by actors through the server. The cluster must list only the
    learner: ``connect_to_cluster`` waits until every listed task answers, and
    actors join later on their own (``connect_to_learner``).
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if port <= 0:
      raise ValueError(f"port must be a positive TCP port, got {port}")
    cluster = tf.train.ClusterSpec({LEARNER_JOB: [f"{host}:{port}"]})
    try:
      tf.config.experimental_connect_to_cluster(
          cluster, job_name=LEARNER_JOB, task_index=0, protocol="grpc")
    except (tf.errors.UnknownError, tf.errors.InternalError,
            tf.errors.UnavailableError) as e:
      # A port taken by someone else shows up here as a gRPC bind failure.
      raise RuntimeError(
          f"could not start the learner's TF server on {host}:{port} "
          f"(is the port in use?): {e}") from e
    return cls(host=host, port=port)


def _tcp_reachable(host: str, port: int, timeout_s: float) -> bool:
  try:
    with socket.create_connection((host, port), timeout=max(timeout_s, 0.05)):
      return True
  except OSError:
    return False


def split_address(address: str) -> tuple[str, int]:
  """(host, port) of "host:port"; a ValueError says what is wrong."""
  host, sep, port = address.rpartition(":")
  if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"the learner address must be HOST:PORT with a port in "
                     f"1..65535, got {address!r}")
  return host.strip("[]"), int(port)


def connect_to_learner(address: str, *, timeout_s: float = 60.0,
                       log: Callable[[str], None] = print,
                       initial_backoff_s: float = 0.5,
                       max_backoff_s: float = 8.0,
                       quiet_s: float = 0.0) -> str:
  """Connects this (actor) process to the learner's server at ``address``.

  Retries with exponential backoff, logging one line per retry once
  ``min(quiet_s, timeout_s / 4)`` have passed, and raises
  ``LearnerUnreachableError`` after ``timeout_s``. Returns the learner's CPU
  device string, where the actor places its queue and weight ops.

  Why the TCP probe: in TF 2.21 ``experimental_connect_to_host`` returns at
  once even when nothing listens (it connects lazily), and the first remote op
  then blocks, retrying inside gRPC, until the server appears; it has no
  timeout and cannot be cancelled. So we first wait for the port to accept
  TCP connections (bounded, with backoff and messages), then connect, then
  confirm with one cheap remote op run in a helper thread so that a port held
  by something that is not a TF server also ends in a clear error.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  host, port = split_address(address)
  start = time.monotonic()
  deadline = start + timeout_s
  wait = initial_backoff_s
  attempt = 0
  while True:
    attempt += 1
    remaining = deadline - time.monotonic()
    if _tcp_reachable(host, port, min(1.0, remaining)):
      break
    remaining = deadline - time.monotonic()
    if remaining <= 0:
      raise LearnerUnreachableError(
          f"learner at {address} unreachable: nothing accepted a connection "
          f"in {time.monotonic() - start:.1f}s ({attempt} attempts); is the "
          "learner running and is the address right?")
    pause = min(wait, remaining)
    # A learner takes a few seconds to start: the first retries are normal
    # and not worth a line.
    if time.monotonic() - start >= min(quiet_s, timeout_s / 4):
      log(f"learner at {address} unreachable (attempt {attempt}); "
          f"retrying in {pause:.1f}s")
    time.sleep(pause)
    wait = min(wait * 2, max_backoff_s)

  # TF pitfall: by default an eager client sends its remote ops over one
  # streaming RPC, which the server handles in a single thread. An op that
  # blocks there (an enqueue into a full queue, waited on for backpressure)
  # then freezes the learner's server for every client: new actors cannot
  # connect and weight reads stall (seen with a single blocked actor). Unary
  # RPCs are handled on a thread pool. The flag is read when the first remote
  # client is made, so it must be set before connecting.
  os.environ[_STREAMING_ENQUEUE_FLAG] = "0"
  tf.config.experimental_connect_to_host(address, job_name=LEARNER_JOB)
  device = learner_device(0)
  outcome: dict[str, object] = {}

  def probe():
    try:
      with tf.device(device):
        outcome["value"] = int(tf.constant(1) + 1)
    except tf.errors.OpError as e:  # Reported to the caller below.
      outcome["error"] = e

  # The probe gets at least a few seconds even when the TCP wait used up the
  # budget: a server that just came up needs a moment to answer.
  probe_timeout = max(deadline - time.monotonic(), 5.0)
  thread = threading.Thread(target=probe, name="learner-probe", daemon=True)
  thread.start()
  thread.join(probe_timeout)
  if thread.is_alive() or "error" in outcome or outcome.get("value") != 2:
    reason = (f"no answer to a remote op within {probe_timeout:.1f}s"
              if thread.is_alive() else f"remote op failed: {outcome.get('error')}")
    raise LearnerUnreachableError(
        f"learner at {address}: the port accepts connections but no TF "
        f"server of job '{LEARNER_JOB}' answered ({reason}), after "
        f"{time.monotonic() - start:.1f}s")
  return device
