"""The two resources a learner shares with its actors, set up in one place.

The learner hosts the trajectory queue and the published weight buffer on
its device (`host`); an actor attaches to both (`attach`). The same two
functions serve the process mode (actors reach the learner's device over
TF's distributed runtime) and the thread mode (the device is this
process's CPU).
"""

from __future__ import annotations

import time
from typing import NamedTuple

from impala_tf.runtime import queue as queue_runtime
from impala_tf.runtime import weights as weights_runtime

QUEUE_NAME = "trajectories"
WEIGHTS_NAME = "weights"


class Channels(NamedTuple):
  """The learner's trajectory queue and its published weights (None for
  an actor that reads none)."""
  queue: queue_runtime.TrajectoryQueue
  weights: weights_runtime.WeightBuffer | None


def host(experiment, num_weights: int, capacity: int, device: str,
         suffix: str = "", start_below: int | None = None) -> Channels:
  """Creates the queue (`capacity` trajectories of `experiment`'s layout)
  and a weight buffer of `num_weights` floats on `device`.

  `start_below`: actors start an unroll only while fewer trajectories than
  this are queued (`TrajectoryQueue.wait_to_start`); None or 0: no such wait.

  `suffix` makes the shared names unique when several runs share one TF
  context (thread mode in tests); actors must attach with the same suffix.
  """
  return Channels(
      queue_runtime.TrajectoryQueue.create(
          experiment.trajectory_specs(), capacity, device,
          shared_name=QUEUE_NAME + suffix, start_below=start_below),
      weights_runtime.WeightBuffer.create(num_weights, device,
                                          shared_name=WEIGHTS_NAME + suffix))


def attach(experiment, num_weights: int | None, device: str, *,
           timeout_s: float = 0.0, suffix: str = "") -> Channels:
  """Attaches to the channels `host` made on `device` (the queue alone
  with `num_weights` None: an actor whose policy runs on the inference
  server reads no weights).

  A learner whose server is up may not have created its queue yet: retries
  for up to `timeout_s` before raising `queue_runtime.QueueNotFoundError`.
  """
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      trajectory_queue = queue_runtime.TrajectoryQueue.attach(
          experiment.trajectory_specs(), device,
          shared_name=QUEUE_NAME + suffix)
      break
    except queue_runtime.QueueNotFoundError:
      if time.monotonic() > deadline:
        raise
      time.sleep(0.5)
  if num_weights is None:
    return Channels(trajectory_queue, None)
  return Channels(
      trajectory_queue,
      weights_runtime.WeightBuffer.attach(num_weights, device,
                                          shared_name=WEIGHTS_NAME + suffix))
