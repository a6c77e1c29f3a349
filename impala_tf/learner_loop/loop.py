"""The loop that ties the parts together, its update sources and the batch
stager.

The loop itself only takes updates from its source and hands them to its
parts until the frame budget is spent or it is told to stop; everything
else is a `base.LoopPart`. The source is the actors' trajectory queue
(`QueueSource`: staged batches, one update each) or, in anakin mode, the
compiled act-and-learn program (`impala_tf.anakin.AnakinSource`: several
updates per call).
"""

import dataclasses
import math
import queue as queue_lib
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from impala_tf.config import errors
from impala_tf.runtime import faults
from impala_tf.agent import replay as replay_lib
from impala_tf.agent import trajectory
from impala_tf.learner_loop import base
from impala_tf.learner_loop import episodes
from impala_tf.runtime import queue as queue_runtime


@dataclasses.dataclass
class TrainingResult:
  """What a finished (or stopped) learner reports."""
  num_frames: int
  num_updates: int
  elapsed_s: float
  mean_returns: dict[str, float]  # level → mean of its last 100 episodes
  episodes: dict[str, int]        # level → finished episodes seen

  @property
  def mean_return(self) -> float:
    """Mean over levels of each level's recent mean return (NaN if none)."""
    values = [v for v in self.mean_returns.values() if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


class StagingError(errors.RunError):
  """Dequeuing or staging a batch failed for another reason than a closed
  queue."""


# How a closed trajectory queue shows up in the stager's thread.
_QUEUE_CLOSED = (queue_runtime.QueueClosedError, tf.errors.OutOfRangeError,
                 tf.errors.CancelledError)


def _concatenate(parts):
  """One batch of the `[n, ...]` field dicts `parts`, in order."""
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class BatchStager:
  """Makes the next batch and moves it to the compute device while the
  current update runs (the paper's StagingArea). Stacked frames are rebuilt
  there (`trajectory.restore_frames`). It takes the next batch out of the
  queue only once the one before it was handed out, so at most one batch
  waits outside the queue: it adds at most one update of policy lag.

  Each batch is `batch_size` fresh trajectories from the queue, or, with a
  `replay` buffer (once it holds a batch), `replay_per_batch` of them drawn
  from it and the rest fresh; fresh ones then join the buffer. Each batch
  carries "replayed", bool `[B]`.

  With `target_version` (a controlled policy lag), a batch holds only
  trajectories made with the weights of that version (others are dropped
  and counted in `dropped`), and is made when asked for (`get`), not ahead:
  a batch made during an update would be one version stale.
  """

  def __init__(self, trajectory_queue, batch_size: int, device: str, *,
               replay=None, replay_per_batch: int = 0,
               target_version: Optional[Callable[[], int]] = None):
    self._queue = trajectory_queue
    self._batch_size = batch_size
    self._device = device
    self._replay = replay
    self._replay_per_batch = replay_per_batch
    self._target_version = target_version
    # One request per batch. Ahead (no controlled lag): the next batch is
    # asked for when one is handed out, and made during its update; with a
    # target version, only when `get` asks (made ahead it would be stale).
    self._requests = queue_lib.Queue()
    self._ahead = target_version is None
    if self._ahead:
      self._requests.put(True)
    self._requested = False
    self.dropped = 0
    self._ready = queue_lib.Queue(maxsize=1)
    # XLA fuses the byte-wise gather, mask and transpose of the rebuild;
    # TF's own kernels are several times slower (docs/benchmarks.md).
    self._restore = tf.function(trajectory.restore_frames, jit_compile=True)
    self._thread = threading.Thread(target=self._run, daemon=True,
                                    name="batch-stager")
    self._thread.start()

  def _run(self):
    while True:
      try:
        self._requests.get()
        faults.fail_if_injected("stager")
        batch, replayed = self._next_batch()
        with tf.device(self._device):
          batch = self._restore({k: tf.identity(v) for k, v in batch.items()})
        batch["replayed"] = replayed
      except Exception as error:  # pylint: disable=broad-except
        # Handed to the learner's loop, which ends the run with it: an error
        # that stayed in this thread would leave the loop waiting forever.
        self._ready.put(error)
        return
      self._ready.put(batch)

  def _next_batch(self):
    """(trajectories `[B, ...]`, replayed bool `[B]`)."""
    size = self._batch_size
    if self._target_version is not None:
      return self._lagged_batch(), np.zeros(size, bool)
    replay = self._replay
    if replay is None:
      return self._queue.dequeue_many(size), np.zeros(size, bool)
    replayed = self._replay_per_batch if replay.size >= size else 0
    fresh = {k: v.numpy() for k, v in
             self._queue.dequeue_many(size - replayed).items()}
    parts = [fresh] + ([replay.sample(replayed)] if replayed else [])
    replay.add(fresh)  # After sampling: a batch does not replay itself.
    return _concatenate(parts), np.arange(size) >= size - replayed

  def _lagged_batch(self):
    kept, count = [], 0
    while count < self._batch_size:
      items = {k: v.numpy() for k, v in self._queue.dequeue_many(
          self._batch_size - count).items()}
      keep = items["policy_version"] == self._target_version()
      self.dropped += int((~keep).sum())
      if keep.any():
        kept.append({k: v[keep] for k, v in items.items()})
        count += int(keep.sum())
    return _concatenate(kept)

  def get(self, timeout_s: Optional[float] = None):
    """The next staged batch.

    Raises:
      queue.Empty: none within `timeout_s`.
      QueueClosedError: the queue was closed (the normal end).
      StagingError: dequeuing or staging failed otherwise.
    """
    if not self._ahead and not self._requested:
      self._requests.put(True)
      self._requested = True
    item = self._ready.get(timeout=timeout_s)
    self._requested = False
    if self._ahead and not isinstance(item, Exception):
      self._requests.put(True)  # Made while this one trains.
    if isinstance(item, Exception):
      self._ready.put(item)  # Later calls see the same end.
      if isinstance(item, _QUEUE_CLOSED):
        raise queue_runtime.QueueClosedError(str(item))
      raise StagingError(
          f"The learner's batch staging failed: {type(item).__name__}: "
          f"{str(item).strip().splitlines()[0] if str(item).strip() else ''}"
      ) from item
    return item


class QueueSource:
  """Updates on batches from the actors' trajectory queue: the staged
  batches of a `BatchStager` (with replay and a controlled policy lag as
  the config asks), each trained on by `Learner.update`.

  An update source gives the loop its updates (`next_updates`), how full
  its queue is (`fill`, None without one), how long its last call spent
  computing rather than waiting (`compute_s`), and closes its queue at the
  end (`close`: actors blocked on it exit).
  """

  def __init__(self, trajectory_queue, capacity: Optional[int] = None):
    self.queue = trajectory_queue
    self.capacity = capacity
    self.compute_s = 0.0
    self._stager = None

  def start(self, loop):
    config = loop.experiment.config
    replay = None
    if config.replay_capacity:
      specs = loop.experiment.trajectory_specs()
      needed = replay_lib.check_fits(specs, config.replay_capacity)
      replay = replay_lib.ReplayBuffer(specs, config.replay_capacity)
      loop.log(f"Replay: {config.replay_capacity:,} trajectories "
               f"({needed / 2**30:.2f} GiB when full), "
               f"{config.replay_per_batch} of every {config.batch_size} "
               "drawn from it.")
    target_version = None
    if config.policy_lag is not None:
      # The version the actors were last given (the `WeightPublisher`'s).
      target_version = lambda: loop.published_version
    device = loop.learner.strategy.extended.worker_devices[0]
    self._stager = BatchStager(self.queue, config.batch_size, device,
                               replay=replay,
                               replay_per_batch=config.replay_per_batch,
                               target_version=target_version)

  def next_updates(self, loop, timeout_s: float) -> list:
    """The next update (a list of one), or none within `timeout_s`.

    Raises:
      QueueClosedError: the queue was closed (the normal end).
      StagingError: dequeuing or staging failed otherwise.
    """
    self.compute_s = 0.0
    stager = self._stager
    try:
      batch = stager.get(timeout_s=timeout_s)
    except queue_lib.Empty:
      return []
    start = time.time()
    if stager.dropped:
      loop.counters["stale_trajectories"] = stager.dropped
    replayed = np.asarray(batch.pop("replayed"))
    if faults.take_once("nonfinite_loss"):
      batch = dict(batch, reward=batch["reward"] * float("nan"))
    learner = loop.learner
    updates_before = int(learner.num_updates.numpy())
    logs = learner.update(batch, num_fresh=int((~replayed).sum()))
    # The lag of the trajectories the actors just made (replayed ones are
    # as old as the buffer).
    policy_lag = (updates_before -
                  batch["policy_version"].numpy()[~replayed])
    self.compute_s = time.time() - start
    return [base.Update(batch, logs, policy_lag, replayed)]

  def fill(self) -> Optional[float]:
    """The queue's fill (0 to 1), or None when its capacity is unknown."""
    if not self.capacity:
      return None
    return self.queue.size() / self.capacity

  def close(self):
    self.queue.close(cancel_pending_enqueues=True)


class LearnerLoop:
  """Takes updates from `source` and calls the parts (module docstring).

  Attributes the parts read: `experiment`, `learner`, `source`,
  `episodes` (the run's `episodes.EpisodeStats`), `log`, `start_time`,
  `wait_s` (total seconds spent waiting for a batch), `num_frames`,
  `num_updates`, `counters` (name → count, shown with every progress
  line), `status` (name → text, shown in heartbeat lines),
  `last_batch_time`, `published_version` (the weights version the actors
  were last given, set by the `WeightPublisher`), and in `end` `error` (the
  exception ending the run, or None).
  """

  def __init__(self, experiment, learner, source,
               parts: Sequence[base.LoopPart], *,
               stop: Optional[threading.Event] = None,
               log: Callable[[str], None] = print):
    self.experiment = experiment
    self.learner = learner
    self.source = source
    self.episodes = episodes.EpisodeStats(experiment.levels)
    self.parts = [self.episodes, *parts]
    self.stop = stop or threading.Event()
    self.log = log
    self.start_time = time.time()
    self.wait_s = 0.0
    self.error: Optional[BaseException] = None
    # Event counts parts keep (e.g. skipped non-finite updates); the
    # progress line and TensorBoard show them.
    self.counters: dict[str, int] = {}
    # Short texts parts keep about the run's state (e.g. actor restarts);
    # heartbeat lines show them.
    self.status: dict[str, str] = {}
    self.last_batch_time = time.time()
    self.published_version: Optional[int] = None
    self._started: list[base.LoopPart] = []

  @property
  def num_frames(self) -> int:
    return int(self.learner.num_frames.numpy())

  @property
  def num_updates(self) -> int:
    return int(self.learner.num_updates.numpy())

  def part(self, kind: type):
    """The loop's part of class `kind` (None if it has none)."""
    return next((p for p in self.parts if isinstance(p, kind)), None)

  def run(self) -> TrainingResult:
    """Trains until `config.total_frames` (or `stop`), then closes the
    queue (actors blocked on it exit) and ends every part."""
    total_frames = self.experiment.config.total_frames
    try:
      self.begin()
      source = self.source
      source.start(self)
      while self.num_frames < total_frames and not self.stop.is_set():
        wait_start = time.time()
        try:
          updates = source.next_updates(self, timeout_s=1.0)
        except queue_runtime.QueueClosedError:
          self.log("The trajectory queue closed; stopping.")
          break
        self.wait_s += time.time() - wait_start - source.compute_s
        self.feed(updates)
    except BaseException as error:
      self.error = error
      raise
    finally:
      self.finish()
    return self.result()

  # A loop driven from outside (several agents trained in one program,
  # `impala_tf.anakin.together`): `begin`, then `feed` each call's updates,
  # then `finish` (with `error` set first if the run failed).

  def begin(self):
    """Starts the parts (restores a checkpoint, saves config.json, ...)."""
    self.start_time = time.time()
    for part in self.parts:
      part.start(self)
      self._started.append(part)

  def feed(self, updates: Sequence[base.Update]):
    """Hands `updates` (possibly none: an idle second) to every part, then
    lets the periodic ones (progress, checkpoints) run."""
    if updates:
      self.last_batch_time = time.time()
    for update in updates:
      for part in self.parts:
        part.after_update(self, update)
    self._tick()

  def finish(self):
    """Ends every started part (see `_end`); once."""
    started, self._started = self._started, []
    self._end(started)

  def _end(self, started):
    """Closes the source's queue (actors blocked on it exit) and ends
    every started part, in reverse order, even when one of them fails: the
    first such failure becomes the run's error (later parts, e.g. the run
    record, see it) and is raised unless the run already failed."""
    self.source.close()
    failure = None
    for part in reversed(started):
      try:
        part.end(self)
      except Exception as error:  # pylint: disable=broad-except
        if failure is None:
          failure = error
        if self.error is None:
          self.error = error
    if failure is not None and self.error is failure:
      raise failure

  def result(self) -> TrainingResult:
    """The run's figures so far."""
    return TrainingResult(
        num_frames=self.num_frames, num_updates=self.num_updates,
        elapsed_s=time.time() - self.start_time,
        mean_returns=self.episodes.mean_returns(),
        episodes=dict(zip(self.episodes.levels, self.episodes.counts)))

  def _tick(self):
    now = time.time()
    for part in self.parts:
      part.tick(self, now)
