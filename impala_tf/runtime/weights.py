"""The learner's published weights, read by actors in one round trip.

The learner flattens its variables into one float32 vector and publishes it,
with its update count as the version, into a single resource variable on its
CPU. An actor's refresh is one ``ReadVariableOp`` on the learner: one remote
read per variable would cost one round trip each.

Layout of the buffer: float32 ``[n + 4]``; elements ``[0, n)`` are the
weights, the next two are the bits of the int64 version (``tf.bitcast``), so
versions stay exact far beyond float32's 2**24, and the last two those of
the publication's sequence number (one more at every ``publish``: the same
version published again is a new publication). Bitcasting is a byte copy all
the way (concat, assign, read, gRPC ``tensor_content``), so a version whose
halves happen to be NaN bit patterns survives too (tested).

No torn reads: weights and version are one tensor in one variable, written by
one ``AssignVariableOp`` and read by one ``ReadVariableOp``. The assign holds
the variable's mutex exclusively, the read holds it shared and returns a
tensor that aliases the buffer, which raises the buffer's reference count.
An assign writes in place only when the buffer's reference count is one (no
reader holds it); otherwise it swaps in a new buffer (TF's copy-on-write for
resource variables). So a reader's snapshot is never modified while it is
sent to the actor, and it always pairs a whole set of weights with their own
version.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

_VERSION_SLOTS = 2  # One int64 is two float32 slots.
_TRAILER_SLOTS = 2 * _VERSION_SLOTS  # The version, then the sequence number.


class WeightsNotPublishedError(RuntimeError):
  """The learner has not published any weights under that name yet."""


def num_elements(variables: Sequence[tf.Variable]) -> int:
  """Total number of scalars in ``variables``."""
  return int(sum(v.shape.num_elements() for v in variables))


def _check_float32(variables):
  for v in variables:
    if v.dtype != tf.float32:
      raise ValueError(
          f"variable {v.name!r} has dtype {v.dtype.name}; published weights "
          "are float32")


def flatten(variables: Sequence[tf.Variable]) -> tf.Tensor:
  """All variables as one float32 vector ``[num_elements(variables)]``, in
  the given order."""
  _check_float32(variables)
  if not variables:
    return tf.zeros([0], tf.float32)
  return tf.concat([tf.reshape(v, [-1]) for v in variables], axis=0)


def unflatten_into(variables: Sequence[tf.Variable], flat) -> None:
  """Assigns the float32 vector ``flat`` (as made by ``flatten`` over the
  same variables in the same order) to ``variables``."""
  _check_float32(variables)
  expected = num_elements(variables)
  flat = tf.convert_to_tensor(flat, tf.float32)
  if flat.shape.rank != 1 or (flat.shape[0] is not None
                              and flat.shape[0] != expected):
    raise ValueError(
        f"flat weights have shape {flat.shape.as_list()}, the variables hold "
        f"{expected} elements")
  offset = 0
  for v in variables:
    size = v.shape.num_elements()
    v.assign(tf.reshape(flat[offset:offset + size], v.shape))
    offset += size


def _version_to_slots(version) -> tf.Tensor:
  return tf.bitcast(tf.reshape(tf.cast(version, tf.int64), []), tf.float32)


class WeightBuffer:
  """The published weights: one float32 vector plus an int64 version.

  ``create`` on the learner, ``attach`` on an actor.
  """

  def __init__(self, handle: tf.Tensor, num_elements: int, device: str,
               shared_name: str):
    """Use ``create`` or ``attach``."""
    self._handle = handle
    self.num_elements = num_elements
    self.device = device
    self.shared_name = shared_name
    self._sequence = 0  # Publications made through this handle.

  @classmethod
  def _handle_op(cls, n, device, shared_name):
    with tf.device(device):
      # A raw handle: no deleter, so an actor exiting cannot destroy it.
      return tf.raw_ops.VarHandleOp(
          dtype=tf.float32, shape=[n + _TRAILER_SLOTS],
          shared_name=shared_name)

  @classmethod
  def create(cls, num_elements: int, device: str,
             shared_name: str = "weights") -> "WeightBuffer":
    """The buffer on the learner's ``device``; nothing is published yet."""
    if num_elements < 0:
      raise ValueError(f"num_elements must be >= 0, got {num_elements}")
    return cls(cls._handle_op(num_elements, device, shared_name),
               num_elements, device, shared_name)

  @classmethod
  def attach(cls, num_elements: int, device: str,
             shared_name: str = "weights") -> "WeightBuffer":
    """A handle on the learner's buffer, for an actor. Sizes are checked on
    the first ``read``."""
    return cls.create(num_elements, device, shared_name)

  def publish(self, flat, version) -> None:
    """Publishes ``flat`` (float32 ``[num_elements]``) as ``version``, the
    next publication of this buffer."""
    flat = tf.convert_to_tensor(flat, tf.float32)
    if flat.shape.rank != 1 or (flat.shape[0] is not None
                                and flat.shape[0] != self.num_elements):
      raise ValueError(
          f"published weights have shape {flat.shape.as_list()}, the buffer "
          f"{self.shared_name!r} holds {self.num_elements} elements")
    self._sequence += 1
    with tf.device(self.device):
      value = tf.concat([flat, _version_to_slots(version),
                         _version_to_slots(self._sequence)], axis=0)
      tf.raw_ops.AssignVariableOp(resource=self._handle, value=value)

  def publication(self) -> int:
    """The sequence number of the latest publication (1 for the first): a
    read of its two slots, not of the weights, for actors that wait for a
    new publication."""
    try:
      with tf.device(self.device):
        slots = tf.raw_ops.ResourceGather(
            resource=self._handle,
            indices=tf.constant([self.num_elements + 2,
                                 self.num_elements + 3]),
            dtype=tf.float32).numpy()
    except (tf.errors.FailedPreconditionError, tf.errors.NotFoundError,
            tf.errors.InvalidArgumentError) as e:
      raise WeightsNotPublishedError(
          f"no weights published as {self.shared_name!r} on {self.device} "
          "yet") from e
    return int(slots.view(np.int64)[0])

  def read(self) -> tuple[np.ndarray, int]:
    """The latest weights (float32 ``[num_elements]``) and their version.

    One round trip to the learner; weights and version always belong together.
    Raises ``WeightsNotPublishedError`` before the first ``publish``.
    """
    try:
      # One remote ReadVariableOp, then its result fetched: faster than a
      # tf.function that reads on the learner and returns to the local
      # device, whose output goes through the Send/Recv rendezvous
      # (docs/benchmarks.md).
      with tf.device(self.device):
        buffer = tf.raw_ops.ReadVariableOp(
            resource=self._handle, dtype=tf.float32).numpy()
    except (tf.errors.FailedPreconditionError, tf.errors.NotFoundError) as e:
      raise WeightsNotPublishedError(
          f"no weights published as {self.shared_name!r} on {self.device} "
          "yet") from e
    if buffer.shape != (self.num_elements + _TRAILER_SLOTS,):
      raise ValueError(
          f"published weights {self.shared_name!r} hold "
          f"{buffer.shape[0] - _TRAILER_SLOTS} elements, this actor expects "
          f"{self.num_elements} (different network?)")
    n = self.num_elements
    version = int(buffer[n:n + _VERSION_SLOTS].view(np.int64)[0])
    return buffer[:n], version
