"""The trajectory FIFO queue that lives on the learner and that actors feed.

One queue element is one whole trajectory (every field of it, see
docs/architecture.md), enqueued by one ``QueueEnqueueV2`` op: an element is
either entirely in the queue or not at all, so an actor killed mid-enqueue
cannot leave half a trajectory behind.

TF pitfalls this module works around (TF 2.21):

* ``tf.queue.FIFOQueue(shared_name=...)`` ignores ``shared_name`` in eager
  mode (it substitutes a fresh uid), so two processes never share it. We call
  the raw op ``FIFOQueueV2`` with an explicit ``shared_name``.
* The Python queue class attaches a deleter to its handle that destroys the
  resource when the handle is garbage collected, i.e. when its process exits.
  Raw-op handles have no deleter, so a dying actor leaves the queue intact.
* ``FIFOQueueV2`` is look-up-or-create and refuses a look-up whose capacity,
  dtypes or shapes differ from the existing queue's. Actors do not know the
  capacity, and an actor that came up first must not create a queue of its
  own, so ``create`` also writes a small descriptor variable next to the queue
  and ``attach`` reads it first: attaching before the learner created the
  queue, or with different specs, is a clear error instead of a second queue.
* An op that blocks inside the learner's server blocks the server: remote
  requests are handled by one thread (streaming RPC, TF's default) or a pool
  of about as many threads as cores (unary RPC). With one actor (streaming) or
  three (unary) waiting in a remote enqueue on a full queue, a new actor could
  not even connect and every weight read stalled. So an actor's enqueue never
  waits inside the server: the queue holds ``capacity + slack`` elements, and
  actors wait on their side until fewer than ``capacity`` are queued before
  sending one. Actors racing for the last places can overshoot ``capacity``,
  by at most what they send at once; ``slack`` must cover that (number of
  actors times trajectories per enqueue), or such a race blocks the server
  again, though only until the learner dequeues.
* An eager remote op with no output (QueueEnqueueV2) is only sent: the call
  returns before the op ran on the learner and its errors surface later. The
  enqueue therefore fetches the queue size right after (the server's
  per-client executor runs ops in order), which confirms the enqueue, reports
  a closed queue at once and feeds the wait above.
* Lag. A trajectory that waits for room after its unroll ages while it
  waits, and a full queue ages it further: with the learner the bottleneck
  every place in the queue is policy lag and no throughput. So the learner
  may also set ``start_below``: actors start an unroll only while fewer than
  that many trajectories are queued (``wait_to_start``), so what they make is
  enqueued at once and trained on within about two updates. The learner
  chooses it and the descriptor carries it, so actors need no flag of their
  own. Trajectories a blocked ``dequeue_many`` already waits for do not
  count (the learner publishes that demand in a variable next to the
  queue): when the actors are the bottleneck the learner waits for a whole
  batch, and an actor that stopped at a part of one would only make it
  wait longer.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Mapping

import numpy as np
import tensorflow as tf

_DESCRIPTOR_SUFFIX = "/descriptor"
_DEMAND_SUFFIX = "/demand"


class QueueClosedError(RuntimeError):
  """The queue was closed (the learner is done); actors should exit."""


class QueueNotFoundError(RuntimeError):
  """No queue of that name has been created on the learner (yet)."""


def _validate_specs(specs: Mapping[str, tf.TensorSpec]) -> dict[str, tf.TensorSpec]:
  if not specs:
    raise ValueError("a trajectory queue needs at least one field")
  out = {}
  for name in sorted(specs):
    spec = specs[name]
    if not isinstance(spec, tf.TensorSpec):
      raise ValueError(f"field {name!r}: expected a tf.TensorSpec, got {spec!r}")
    if not spec.shape.is_fully_defined():
      # dequeue_many stacks elements, which needs every shape known.
      raise ValueError(
          f"field {name!r}: shape {spec.shape} must be fully defined")
    out[name] = spec
  return out


def _descriptor(specs: Mapping[str, tf.TensorSpec], capacity: int,
                slack: int, start_below: int | None) -> str:
  return json.dumps({
      "capacity": capacity,
      "slack": slack,
      "start_below": start_below,
      "fields": {n: [s.dtype.name, s.shape.as_list()] for n, s in specs.items()},
  }, sort_keys=True)


class TrajectoryQueue:
  """A bounded FIFO queue of trajectories hosted on the learner's device.

  Components are kept in sorted field order. Create it on the learner with
  ``create``; actors get a handle with ``attach``.
  """

  def __init__(self, handle: tf.Tensor, specs: Mapping[str, tf.TensorSpec],
               capacity: int, slack: int, device: str, shared_name: str,
               start_below: int | None = None):
    """Use ``create`` or ``attach``."""
    self._handle = handle
    self._specs = dict(specs)
    self._names = list(self._specs)
    self._dtypes = [s.dtype for s in self._specs.values()]
    self.capacity = capacity
    self.slack = slack
    self.start_below = start_below
    self.device = device
    self.shared_name = shared_name
    self._last_size = 0  # As seen by this process's last enqueue.
    with tf.device(device):
      # How many trajectories a blocked dequeue_many waits for (0: none).
      self._demand = tf.raw_ops.VarHandleOp(
          dtype=tf.int64, shape=[], shared_name=shared_name + _DEMAND_SUFFIX)
    self._packable = all(
        s.dtype == tf.bool or (s.dtype.is_numpy_compatible and
                               (s.dtype.is_integer or s.dtype.is_floating))
        for s in self._specs.values())
    self._enqueue_packed = self._make_packed_enqueue(many=False)
    self._enqueue_packed_many = self._make_packed_enqueue(many=True)

  @property
  def specs(self) -> dict[str, tf.TensorSpec]:
    return dict(self._specs)

  @classmethod
  def create(cls, specs: Mapping[str, tf.TensorSpec], capacity: int,
             device: str, shared_name: str = "trajectories", *,
             slack: int = 256,
             start_below: int | None = None) -> "TrajectoryQueue":
    """Creates the queue on ``device`` (the learner's CPU) for ``capacity``
    trajectories (plus ``slack`` for racing actors, see the module doc).

    ``start_below``: actors start an unroll only while fewer than this many
    trajectories are queued (``wait_to_start``); None or 0: they never wait
    before an unroll, only for room to enqueue it.
    """
    specs = _validate_specs(specs)
    if capacity < 1:
      raise ValueError(f"queue capacity must be at least 1, got {capacity}")
    if slack < 0:
      raise ValueError(f"queue slack must be >= 0, got {slack}")
    if start_below is not None and not 0 <= start_below <= capacity:
      raise ValueError(f"start_below must be in [0, capacity={capacity}], "
                       f"got {start_below}")
    start_below = start_below or None
    with tf.device(device):
      handle = cls._queue_op(specs, capacity + slack, shared_name)
      descriptor = tf.raw_ops.VarHandleOp(
          dtype=tf.string, shape=[], shared_name=shared_name + _DESCRIPTOR_SUFFIX)
      tf.raw_ops.AssignVariableOp(
          resource=descriptor,
          value=tf.constant(_descriptor(specs, capacity, slack,
                                        start_below)))
      tf.raw_ops.AssignVariableOp(
          resource=tf.raw_ops.VarHandleOp(
              dtype=tf.int64, shape=[],
              shared_name=shared_name + _DEMAND_SUFFIX),
          value=tf.constant(0, tf.int64))
    return cls(handle, specs, capacity, slack, device, shared_name,
               start_below)

  @classmethod
  def attach(cls, specs: Mapping[str, tf.TensorSpec], device: str,
             shared_name: str = "trajectories") -> "TrajectoryQueue":
    """A handle on the learner's existing queue, for an actor.

    Raises ``QueueNotFoundError`` if the learner has not created it, and
    ``ValueError`` if ``specs`` differ from the learner's.
    """
    specs = _validate_specs(specs)
    with tf.device(device):
      descriptor = tf.raw_ops.VarHandleOp(
          dtype=tf.string, shape=[], shared_name=shared_name + _DESCRIPTOR_SUFFIX)
      try:
        text = tf.raw_ops.ReadVariableOp(resource=descriptor, dtype=tf.string)
        text = text.numpy().decode()
      except (tf.errors.NotFoundError, tf.errors.FailedPreconditionError) as e:
        raise QueueNotFoundError(
            f"no queue {shared_name!r} on {device}: the learner has not "
            "created it (yet)") from e
    theirs = json.loads(text)
    capacity, slack = theirs["capacity"], theirs["slack"]
    start_below = theirs.get("start_below")
    ours = json.loads(_descriptor(specs, capacity, slack, start_below))
    if theirs != ours:
      diffs = sorted(
          n for n in set(theirs["fields"]) | set(ours["fields"])
          if theirs["fields"].get(n) != ours["fields"].get(n))
      detail = "; ".join(
          f"{n}: learner {theirs['fields'].get(n)}, here {ours['fields'].get(n)}"
          for n in diffs)
      raise ValueError(
          f"trajectory specs differ from the learner's queue {shared_name!r} "
          f"(fields as [dtype, shape]): {detail}")
    with tf.device(device):
      # The raw op returns a bare handle with no deleter: this process exiting
      # (or being killed) never destroys the learner's queue.
      handle = cls._queue_op(specs, capacity + slack, shared_name)
    return cls(handle, specs, capacity, slack, device, shared_name,
               start_below)

  @staticmethod
  def _queue_op(specs, capacity, shared_name):
    return tf.raw_ops.FIFOQueueV2(
        component_types=[s.dtype for s in specs.values()],
        shapes=[s.shape.as_list() for s in specs.values()],
        capacity=capacity, shared_name=shared_name)

  def _components(self, traj: Mapping[str, object], batched: bool) -> list:
    """Checks a trajectory (or a batch) against the specs, in sorted order."""
    missing = sorted(set(self._names) - set(traj))
    extra = sorted(set(traj) - set(self._names))
    if missing or extra:
      raise ValueError(
          f"trajectory fields do not match the queue {self.shared_name!r}: "
          f"missing {missing}, unexpected {extra}")
    components = []
    batch_size = None
    for name, spec in self._specs.items():
      value = traj[name]
      if isinstance(value, tf.Tensor):
        dtype, shape = value.dtype, tuple(value.shape.as_list())
      else:
        value = np.asarray(value)
        dtype, shape = tf.as_dtype(value.dtype), value.shape
      if dtype != spec.dtype:
        # No silent casts: a float64 reward or an int64 action is a bug in
        # the actor, and a cast would hide it.
        raise ValueError(
            f"field {name!r}: dtype {dtype.name}, the queue expects "
            f"{spec.dtype.name}")
      expected = tuple(spec.shape.as_list())
      if batched:
        if len(shape) != len(expected) + 1 or shape[1:] != expected:
          raise ValueError(
              f"field {name!r}: shape {list(shape)}, the queue expects "
              f"[batch, {', '.join(map(str, expected))}]")
        if batch_size is None:
          batch_size = shape[0]
        elif shape[0] != batch_size:
          raise ValueError(
              f"field {name!r}: batch size {shape[0]}, other fields have "
              f"{batch_size}")
      elif shape != expected:
        raise ValueError(
            f"field {name!r}: shape {list(shape)}, the queue expects "
            f"{list(expected)}")
      components.append(value)
    return components

  def enqueue(self, traj: Mapping[str, "np.ndarray | tf.Tensor"]) -> None:
    """Adds one trajectory (one op: it arrives whole or not at all).

    Waits while ``capacity`` or more trajectories are queued. Raises
    ``QueueClosedError`` once the queue is closed.
    """
    components = self._components(traj, batched=False)
    with self._closed_as_error():
      self._wait_for_room()
      self._send(components, batch_size=None)
      self._confirm()

  def enqueue_many(self, trajs: Mapping[str, "np.ndarray | tf.Tensor"]) -> None:
    """Adds a batch of trajectories, each field with a leading batch dim.

    Each trajectory is whole in the queue; another actor's items may be
    interleaved between them.
    """
    components = self._components(trajs, batched=True)
    with self._closed_as_error():
      self._wait_for_room()
      self._send(components, batch_size=int(components[0].shape[0]))
      self._confirm()

  def _send(self, components: list, batch_size: int | None) -> None:
    """Runs the enqueue on the learner with all fields in one tensor.

    TF pitfall: each local input of a remote op is copied to the remote
    device by a request of its own, so a dozen small fields cost more than
    the frames. So the fields travel as one uint8 buffer, which a function on
    the learner splits and bitcasts back (figures in docs/benchmarks.md).
    """
    if not self._packable:
      with tf.device(self.device):
        if batch_size is None:
          tf.raw_ops.QueueEnqueueV2(handle=self._handle, components=components)
        else:
          tf.raw_ops.QueueEnqueueManyV2(
              handle=self._handle, components=components)
      return
    blob = np.concatenate([
        np.ascontiguousarray(
            c.numpy() if isinstance(c, tf.Tensor) else c).reshape(-1).view(
                np.uint8)
        for c in components])
    fn = self._enqueue_packed if batch_size is None else self._enqueue_packed_many
    with tf.device(self.device):
      fn(blob, np.int64(1 if batch_size is None else batch_size))

  def _make_packed_enqueue(self, many: bool):
    specs = list(self._specs.values())
    item_bytes = [s.shape.num_elements() * s.dtype.size for s in specs]

    def enqueue_packed(blob, batch_size):
      with tf.device(self.device):
        parts = tf.split(blob, [n * batch_size for n in item_bytes])
        components = []
        for part, spec in zip(parts, specs):
          shape = ([-1] if many else []) + spec.shape.as_list()
          if spec.dtype == tf.bool:
            value = tf.not_equal(part, 0)  # numpy bools are bytes 0 and 1.
          elif spec.dtype.size == 1:
            value = tf.bitcast(part, spec.dtype)
          else:
            value = tf.bitcast(tf.reshape(part, [-1, spec.dtype.size]),
                               spec.dtype)
          components.append(tf.reshape(value, shape))
        if many:
          tf.raw_ops.QueueEnqueueManyV2(handle=self._handle,
                                        components=components)
        else:
          tf.raw_ops.QueueEnqueueV2(handle=self._handle, components=components)

    return tf.function(enqueue_packed, autograph=False, input_signature=[
        tf.TensorSpec([None], tf.uint8), tf.TensorSpec([], tf.int64)])

  def _confirm(self) -> None:
    """Returns once this process's enqueue has run on the learner.

    Without it a remote enqueue is only sent (see the module doc): no
    backpressure, a closed queue noticed late, and a killed actor's backlog
    still arriving after its death. The size fetched runs after the enqueue
    (the server's executor for this client is in order) and raises its error.
    """
    with tf.device(self.device):
      self._last_size = int(tf.raw_ops.QueueSizeV2(handle=self._handle))

  def wait_to_start(self) -> None:
    """Returns once an actor may start its next unroll: fewer than
    ``start_below`` trajectories queued beyond what the learner's blocked
    dequeue already waits for (at once when the learner set no threshold).

    Uses the size this process saw at its last enqueue and asks the learner
    only while that was too many. Raises ``QueueClosedError`` once the queue
    is closed.
    """
    if not self.start_below or self._last_size < self.start_below:
      return
    poll_s = 0.002
    with self._closed_as_error():
      while True:
        with tf.device(self.device):
          if self.is_closed():
            raise self._closed_error()
          self._last_size = int(tf.raw_ops.QueueSizeV2(handle=self._handle))
          if self._last_size < self.start_below:
            return
          demand = int(tf.raw_ops.ReadVariableOp(resource=self._demand,
                                                 dtype=tf.int64))
        if self._last_size - demand < self.start_below:
          return
        time.sleep(poll_s)
        poll_s = min(poll_s * 2, 0.02)

  def _wait_for_room(self) -> None:
    """Waits, on this side, until fewer than ``capacity`` are queued."""
    self._wait_below(self.capacity, max_poll_s=0.05)

  def _wait_below(self, limit: int, max_poll_s: float) -> None:
    poll_s = 0.002
    while self._last_size >= limit:
      time.sleep(poll_s)
      poll_s = min(poll_s * 2, max_poll_s)
      with tf.device(self.device):
        if self.is_closed():
          raise self._closed_error()
        self._last_size = int(tf.raw_ops.QueueSizeV2(handle=self._handle))

  def _closed_error(self) -> QueueClosedError:
    return QueueClosedError(f"queue {self.shared_name!r} is closed")

  @contextlib.contextmanager
  def _closed_as_error(self):
    try:
      yield
    except tf.errors.CancelledError as e:
      # TF reports both "queue is closed" and "pending enqueue cancelled by
      # close()" as CancelledError; a cancelled RPC to a learner that died
      # is one too, and is not a closed queue.
      if "queue" not in str(e).lower():
        raise
      raise self._closed_error() from e
    except (tf.errors.UnknownError, TypeError) as e:
      # An enqueue into a queue closed meanwhile, reported by the learner
      # over gRPC: an UnknownError, or, from the packed enqueue function,
      # a TypeError ("Binding inputs to tf.function failed due to ...
      # FIFOQueue '...' is closed"). Seen at a run's end with several
      # enqueueing threads in one actor (central inference's groups).
      if f"FIFOQueue '{self.shared_name}' is closed" not in str(e):
        raise
      raise self._closed_error() from e

  def dequeue_many(self, n: int) -> dict[str, tf.Tensor]:
    """Takes ``n`` trajectories: every field stacked to ``[n, ...]``.

    Blocks until ``n`` are there. Works eagerly and inside a ``tf.function``
    (where a closed queue shows up as ``tf.errors.OutOfRangeError`` when the
    function runs). Eagerly, a closed queue with fewer than ``n`` items left
    raises ``QueueClosedError``.
    """
    eager = tf.executing_eagerly()
    try:
      with tf.device(self.device):
        if eager:
          tf.raw_ops.AssignVariableOp(resource=self._demand,
                                      value=tf.constant(n, tf.int64))
        try:
          values = tf.raw_ops.QueueDequeueManyV2(
              handle=self._handle, n=n, component_types=self._dtypes)
        finally:
          if eager:
            tf.raw_ops.AssignVariableOp(resource=self._demand,
                                        value=tf.constant(0, tf.int64))
    except tf.errors.OutOfRangeError as e:
      raise QueueClosedError(
          f"queue {self.shared_name!r} is closed and has fewer than {n} "
          "trajectories left") from e
    out = {}
    for name, value in zip(self._names, values):
      # The raw op loses static shapes in graph mode; restore them.
      value.set_shape([n] + self._specs[name].shape.as_list()
                      if isinstance(n, int) else
                      [None] + self._specs[name].shape.as_list())
      out[name] = value
    return out

  def size(self) -> int:
    """How many trajectories wait in the queue now."""
    with self._closed_as_error(), tf.device(self.device):
      return int(tf.raw_ops.QueueSizeV2(handle=self._handle))

  def is_closed(self) -> bool:
    """Whether the learner closed the queue (its run is over)."""
    with tf.device(self.device):
      return bool(tf.raw_ops.QueueIsClosedV2(handle=self._handle))

  def close(self, cancel_pending_enqueues: bool = True) -> None:
    """Closes the queue: later (and, by default, blocked) enqueues fail with
    ``QueueClosedError``; items already in it can still be dequeued."""
    with tf.device(self.device):
      tf.raw_ops.QueueCloseV2(
          handle=self._handle, cancel_pending_enqueues=cancel_pending_enqueues)
