"""How requests reach the inference server: directly in one process
(`LocalConnection`), or over a socket next to the learner's TF server
(`SocketFrontend` on the learner, `SocketConnection` in an actor).

The socket is a `multiprocessing.connection` listener: length-framed
messages after an HMAC challenge with a shared key (`keys`:
local mode makes a fresh one per run and gives it to its children; on a
cluster set it in every role's environment). Messages are `codec`'s
(arrays and JSON, never pickles). Like the TF server's port, this one
belongs on a private network.

One connection carries one request at a time: an actor's group of
environments sends a step and waits for its reply (the actor hides that
wait by stepping its other groups meanwhile: `acting.actor_loop`).
"""

from __future__ import annotations

import multiprocessing.connection
import queue
import socket
import threading
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np

from impala_tf.inference import codec
from impala_tf.inference import keys
from impala_tf.inference import server as server_lib

class InferenceLostError(ConnectionError):
  """The inference server went away (or never answered)."""


class InferenceRequestError(RuntimeError):
  """The server could not answer a request (its message says why)."""


class LocalConnection:
  """A connection to a server in this process (threads mode)."""

  def __init__(self, server: server_lib.InferenceServer):
    self._server = server
    self._replies = queue.SimpleQueue()

  def call(self, request: server_lib.Request):
    request.reply = lambda meta, arrays: self._replies.put((meta, arrays))
    self._server.submit(request)
    return _checked(*self._replies.get())

  def close(self):
    pass


class SocketConnection:
  """A connection to the inference server at `address` (HOST:PORT)."""

  def __init__(self, address: str, *, timeout_s: float = 60.0,
               key: Optional[bytes] = None):
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
      try:
        self._connection = multiprocessing.connection.Client(
            (host, int(port)), authkey=key or keys.from_environment())
        break
      except (ConnectionRefusedError, ConnectionResetError, EOFError,
              socket.timeout) as e:
        if time.monotonic() > deadline:
          raise InferenceLostError(
              f"no inference server answered at {address} within "
              f"{timeout_s:g} s ({type(e).__name__})") from None
        time.sleep(0.2)
      except multiprocessing.AuthenticationError:
        # Not a server that went away: waiting would not help.
        raise InferenceRequestError(
            f"the inference server at {address} refused this actor's key "
            f"({keys.KEY_ENV} differs between the server and the actor)"
        ) from None
    self.address = address

  def call(self, request: server_lib.Request):
    message = codec.encode(
        {"kind": request.kind, "channels_first": request.channels_first,
         "want_state": request.want_state},
        {"slots": request.slots, **request.arrays})
    try:
      self._connection.send_bytes(message)
      meta, arrays = codec.decode(self._connection.recv_bytes())
    except (EOFError, OSError) as e:
      raise InferenceLostError(
          f"the inference server at {self.address} went away "
          f"({type(e).__name__})") from None
    return _checked(meta, arrays)

  def close(self):
    self._connection.close()


def _checked(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
  if "error" in meta:
    raise InferenceRequestError(meta["error"])
  return meta, arrays


class SocketFrontend:
  """Accepts actors' connections on `port` and hands their requests to
  `server`; each connection has a thread that reads its requests."""

  def __init__(self, server: server_lib.InferenceServer, port: int, *,
               host: str = "0.0.0.0", key: Optional[bytes] = None,
               log: Callable[[str], None] = print):
    self._server = server
    self._log = log
    self._listener = multiprocessing.connection.Listener(
        (host, port), authkey=key or keys.from_environment())
    self.port = port
    self._closed = False
    self._thread = threading.Thread(target=self._accept, daemon=True,
                                    name="inference-accept")
    self._thread.start()

  def close(self):
    self._closed = True
    self._listener.close()

  def _accept(self):
    while not self._closed:
      try:
        connection = self._listener.accept()
      except multiprocessing.AuthenticationError:
        self._log("Inference: refused a connection with the wrong key.")
        continue
      except (OSError, EOFError):
        if self._closed:
          return
        continue  # A client that went away during the handshake.
      threading.Thread(target=self._read, args=(connection,), daemon=True,
                       name="inference-connection").start()

  def _read(self, connection):
    lock = threading.Lock()

    def reply(meta, arrays):
      try:
        with lock:
          connection.send_bytes(codec.encode(meta, arrays))
      except OSError:
        # The actor went away mid-request (killed, restarted): its
        # environments' states stay until its successor resets them.
        self._server.count_dropped_reply()

    while True:
      try:
        message = connection.recv_bytes()
      except (EOFError, OSError):
        connection.close()
        return
      try:
        meta, arrays = codec.decode(message)
        arrays = dict(arrays)
        slots = arrays.pop("slots")
        request = server_lib.Request(
            kind=meta["kind"], slots=slots, arrays=arrays, reply=reply,
            channels_first=bool(meta.get("channels_first")),
            want_state=bool(meta.get("want_state")))
      except (codec.MessageError, KeyError) as e:
        reply({"error": f"not an inference request: {e}"}, {})
        continue
      self._server.submit(request)
