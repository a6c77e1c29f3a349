"""The learner's and the actors' main loops, and the in-process variant.

The same two loops run in every mode:

* processes (the launcher's default): the learner process hosts the
  trajectory queue and the published weights on its TF server; each actor
  process attaches to them over TF's distributed runtime;
* threads (`train_in_process`): the queue and the weights live on this
  process's CPU and the actors are threads, so algorithm tests and small runs
  need no processes.
"""

import collections
import dataclasses
import math
import queue as queue_lib
import threading
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from impala_tf import actor as actor_lib
from impala_tf import experiment as experiment_lib
from impala_tf import learner as learner_lib
from impala_tf import networks
from impala_tf import trajectory
from impala_tf.runtime import queue as queue_runtime
from impala_tf.runtime import server as server_lib
from impala_tf.runtime import weights as weights_runtime

RETURN_WINDOW = 100  # episodes per level in the reported mean return


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


class EpisodeStats:
  """Recent finished-episode returns per level, read off trajectories."""

  def __init__(self, levels):
    self.levels = tuple(levels)
    self._returns = [collections.deque(maxlen=RETURN_WINDOW) for _ in levels]
    self.counts = [0] * len(levels)

  def add(self, episode_return: np.ndarray, level_id: np.ndarray):
    """`episode_return` `[B, T+1]` (NaN where no game ended), `level_id`
    `[B]`. Step 0 repeats the previous unroll's last step: skipped."""
    finished = ~np.isnan(episode_return[:, 1:])
    for b, t in zip(*np.nonzero(finished)):
      level = int(level_id[b])
      self._returns[level].append(float(episode_return[b, t + 1]))
      self.counts[level] += 1

  def mean_returns(self) -> dict[str, float]:
    return {level: (float(np.mean(r)) if r else math.nan)
            for level, r in zip(self.levels, self._returns)}


def _format_duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _BatchStager:
  """Dequeues the next batch and moves it to the compute device while the
  current update runs (the paper's StagingArea; adds at most one update of
  policy lag). Stacked frames are rebuilt there (`trajectory.restore_frames`).
  """

  def __init__(self, trajectory_queue, batch_size: int, device: str):
    self._queue = trajectory_queue
    self._batch_size = batch_size
    self._device = device
    self._ready = queue_lib.Queue(maxsize=1)
    # Compiled with XLA: 10 ms instead of 55 ms per Atari batch (trajectory.py).
    self._restore = tf.function(trajectory.restore_frames, jit_compile=True)
    self._thread = threading.Thread(target=self._run, daemon=True,
                                    name="batch-stager")
    self._thread.start()

  def _run(self):
    while True:
      try:
        batch = self._queue.dequeue_many(self._batch_size)
        with tf.device(self._device):
          batch = self._restore({k: tf.identity(v) for k, v in batch.items()})
      except (queue_runtime.QueueClosedError, tf.errors.OutOfRangeError,
              tf.errors.CancelledError) as error:
        self._ready.put(error)
        return
      self._ready.put(batch)

  def get(self, timeout_s: Optional[float] = None):
    """The next staged batch; raises QueueClosedError once the queue is."""
    item = self._ready.get(timeout=timeout_s)
    if isinstance(item, Exception):
      self._ready.put(item)  # Later calls see the same end.
      raise queue_runtime.QueueClosedError(str(item))
    return item


def run_learner(experiment: experiment_lib.Experiment,
                learner: learner_lib.Learner,
                trajectory_queue: queue_runtime.TrajectoryQueue,
                weights: weights_runtime.WeightBuffer, *,
                queue_capacity: int, logdir: Optional[str] = None,
                log_interval_s: float = 5.0,
                checkpoint_interval_s: float = 600.0,
                stop: Optional[threading.Event] = None,
                log: Callable[[str], None] = print) -> TrainingResult:
  """Trains until `config.total_frames` (or `stop`), then closes the queue.

  Publishes the weights before the first update (version 0) and after every
  update (version = number of updates so far). With a `logdir`, restores the
  latest checkpoint there first, saves one every `checkpoint_interval_s` and
  at the end, and writes TensorBoard summaries of every progress line.
  """
  config = experiment.config
  stop = stop or threading.Event()
  manager = None
  writer = None
  if logdir:
    checkpoint = tf.train.Checkpoint(
        network=learner.network, optimizer=learner.optimizer,
        num_updates=learner.num_updates, num_frames=learner.num_frames)
    manager = tf.train.CheckpointManager(
        checkpoint, f"{logdir}/checkpoints", max_to_keep=3)
    if manager.latest_checkpoint:
      checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
      log(f"Restored {manager.latest_checkpoint} at "
          f"{int(learner.num_frames.numpy()):,} frames.")
    writer = tf.summary.create_file_writer(logdir)

  def publish():
    weights.publish(weights_runtime.flatten(learner.variables),
                    int(learner.num_updates.numpy()))

  publish()
  stats = EpisodeStats(experiment.levels)
  device = learner.strategy.extended.worker_devices[0]
  stager = _BatchStager(trajectory_queue, config.batch_size, device)

  start = time.time()
  last_log = last_checkpoint = start
  frames_at_log = int(learner.num_frames.numpy())
  updates_at_log = int(learner.num_updates.numpy())
  lags: list[np.ndarray] = []
  waited_s = 0.0  # Time the learner sat waiting for a batch since last log.
  logs = {}
  try:
    while int(learner.num_frames.numpy()) < config.total_frames and (
        not stop.is_set()):
      wait_start = time.time()
      try:
        batch = stager.get(timeout_s=1.0)
      except queue_lib.Empty:
        waited_s += time.time() - wait_start
        continue
      except queue_runtime.QueueClosedError:
        log("The trajectory queue closed; stopping.")
        break
      waited_s += time.time() - wait_start
      updates_before = int(learner.num_updates.numpy())
      logs = learner.update(batch)
      publish()
      lags.append(updates_before - batch["policy_version"].numpy())
      stats.add(batch["episode_return"].numpy(), batch["level_id"].numpy())

      now = time.time()
      if now - last_log >= log_interval_s:
        frames = int(learner.num_frames.numpy())
        updates = int(learner.num_updates.numpy())
        fps = (frames - frames_at_log) / (now - last_log)
        ups = (updates - updates_at_log) / (now - last_log)
        lag = np.concatenate(lags)
        mean_returns = stats.mean_returns()
        progress = dict(
            frames=frames, fps=fps, updates_per_s=ups,
            queue_fill=trajectory_queue.size() / queue_capacity,
            learner_wait=waited_s / (now - last_log),
            lag_mean=float(lag.mean()), lag_max=int(lag.max()),
            logs={k: float(v) for k, v in logs.items()})
        log(_progress_line(progress, mean_returns, stats,
                           elapsed=now - start,
                           remaining=(config.total_frames - frames) / fps
                           if fps > 0 else math.inf))
        if writer is not None:
          _write_summaries(writer, progress, lag, mean_returns)
        last_log, frames_at_log, updates_at_log, lags = now, frames, updates, []
        waited_s = 0.0
      if manager is not None and now - last_checkpoint >= checkpoint_interval_s:
        manager.save(checkpoint_number=int(learner.num_updates.numpy()))
        last_checkpoint = now
  finally:
    # Actors blocked on a full queue get QueueClosedError and exit.
    trajectory_queue.close(cancel_pending_enqueues=True)
    if manager is not None:
      manager.save(checkpoint_number=int(learner.num_updates.numpy()))
    if writer is not None:
      writer.flush()

  result = TrainingResult(
      num_frames=int(learner.num_frames.numpy()),
      num_updates=int(learner.num_updates.numpy()),
      elapsed_s=time.time() - start, mean_returns=stats.mean_returns(),
      episodes=dict(zip(stats.levels, stats.counts)))
  log(f"Done: {result.num_frames:,} frames, {result.num_updates:,} updates "
      f"in {_format_duration(result.elapsed_s)}; mean return over the last "
      f"{RETURN_WINDOW} episodes: " + ", ".join(
          f"{level} {value:.2f} ({result.episodes[level]} episodes)"
          for level, value in result.mean_returns.items()))
  return result


def _progress_line(progress, mean_returns, stats, elapsed, remaining) -> str:
  logs = progress["logs"]
  finite = [v for v in mean_returns.values() if not math.isnan(v)]
  if len(mean_returns) == 1:
    (value,) = mean_returns.values()
    returns = f"return {value:.2f}"
  else:
    returns = (f"return (mean of {len(finite)}/{len(mean_returns)} levels) "
               f"{np.mean(finite) if finite else math.nan:.2f}")
  return (
      f"frames {progress['frames']:,} | {progress['fps']:,.0f} f/s | "
      f"{progress['updates_per_s']:.1f} upd/s | queue "
      f"{progress['queue_fill']:.0%} | learner waits "
      f"{progress['learner_wait']:.0%} | lag {progress['lag_mean']:.1f} "
      f"(max {progress['lag_max']}) | {returns} ({sum(stats.counts)} eps) | "
      f"loss {logs.get('total_loss', math.nan):.3g} pg "
      f"{logs.get('pg_loss', math.nan):.3g} base "
      f"{logs.get('baseline_loss', math.nan):.3g} ent "
      f"{logs.get('entropy_loss', math.nan):.3g} | "
      f"{_format_duration(elapsed)} elapsed, "
      f"{_format_duration(remaining)} left")


def _write_summaries(writer, progress, lag, mean_returns):
  step = progress["frames"]
  with writer.as_default(step=step):
    tf.summary.scalar("throughput/frames_per_s", progress["fps"])
    tf.summary.scalar("throughput/updates_per_s", progress["updates_per_s"])
    tf.summary.scalar("queue/fill", progress["queue_fill"])
    tf.summary.scalar("queue/learner_wait_fraction", progress["learner_wait"])
    tf.summary.scalar("policy_lag/mean", progress["lag_mean"])
    tf.summary.histogram("policy_lag/distribution", lag)
    for name, value in progress["logs"].items():
      tf.summary.scalar(f"learner/{name}", value)
    for level, value in mean_returns.items():
      if not math.isnan(value):
        tf.summary.scalar(f"return/{level}", value)


def run_actor(experiment: experiment_lib.Experiment, actor_index: int,
              trajectory_queue: queue_runtime.TrajectoryQueue,
              weights: weights_runtime.WeightBuffer, *, seed: int = 0,
              stop: Optional[threading.Event] = None,
              log: Callable[[str], None] = print,
              network: Optional[networks.ImpalaNetwork] = None) -> int:
  """Steps, refreshes weights before every unroll, enqueues; returns the
  number of unrolls sent when the queue closes or `stop` is set.

  `network` is the actor's copy of the policy, built by
  `build_actor_network` (default: built here).
  """
  stop = stop or threading.Event()
  env = experiment.make_env(actor_index, seed=seed)
  if network is None:
    network = build_actor_network(experiment)
  actor = actor_lib.Actor(env, network, experiment.config.unroll_length,
                          level_ids=experiment.level_ids(actor_index),
                          seed=seed * 7919 + actor_index)
  version = None
  unrolls = 0
  try:
    while not stop.is_set():
      try:
        flat, published = weights.read()
      except weights_runtime.WeightsNotPublishedError:
        time.sleep(0.2)
        continue
      if published != version:
        weights_runtime.unflatten_into(network.trainable_variables, flat)
        version = published
      trajectories = actor.unroll(policy_version=version)
      try:
        trajectory_queue.enqueue_many(trajectories)
      except queue_runtime.QueueClosedError:
        break
      unrolls += 1
  except tf.errors.UnavailableError as e:
    # A learner that ends normally closes the queue first (handled above);
    # this is one that died. TF's message is a page of gRPC detail.
    raise server_lib.LearnerLostError(
        f"Actor {actor_index} lost the learner after {unrolls} unrolls "
        f"({e.message.splitlines()[0]}); stopping.") from None
  finally:
    env.close()
  log(f"Actor {actor_index}: sent {unrolls} unrolls of "
      f"{experiment.envs_per_actor} trajectories; stopping.")
  return unrolls


def build_actor_network(experiment: experiment_lib.Experiment
                        ) -> networks.ImpalaNetwork:
  """The experiment's network with its variables created (weights are
  copied into them from the learner before every unroll)."""
  network = experiment.make_network()
  network(networks.dummy_input(experiment.observation_spec),
          network.initial_state(1))
  return network


def train_in_process(experiment: experiment_lib.Experiment, num_actors: int,
                     *, queue_capacity: Optional[int] = None,
                     logdir: Optional[str] = None, seed: int = 0,
                     log_interval_s: float = 5.0,
                     log: Callable[[str], None] = print,
                     strategy: Optional[tf.distribute.Strategy] = None
                     ) -> TrainingResult:
  """The whole system in one process: actors are threads."""
  if num_actors < 1:
    raise ValueError(f"num_actors must be at least 1, got {num_actors}.")
  capacity = queue_capacity or experiment_lib.default_queue_capacity(
      experiment, num_actors)
  experiment_lib.check_queue_capacity(experiment, capacity)
  device = server_lib.LOCAL_CPU
  learner = learner_lib.Learner(experiment.config, experiment.make_network,
                                experiment.observation_spec,
                                strategy=strategy)
  # Unique names: several in-process runs may share one TF context.
  suffix = f"{id(learner):x}"
  trajectory_queue = queue_runtime.TrajectoryQueue.create(
      experiment.trajectory_specs(), capacity, device,
      shared_name=f"trajectories_{suffix}")
  weights = weights_runtime.WeightBuffer.create(
      weights_runtime.num_elements(learner.variables), device,
      shared_name=f"weights_{suffix}")
  stop = threading.Event()
  errors = []

  def actor_thread(index):
    try:
      run_actor(experiment, index, trajectory_queue, weights, seed=seed,
                stop=stop, log=log)
    except BaseException as error:  # Reported by the learner thread below.
      errors.append(error)
      stop.set()
      raise

  threads = [threading.Thread(target=actor_thread, args=(i,), daemon=True,
                              name=f"actor-{i}") for i in range(num_actors)]
  for thread in threads:
    thread.start()
  try:
    result = run_learner(experiment, learner, trajectory_queue, weights,
                         queue_capacity=capacity, logdir=logdir,
                         log_interval_s=log_interval_s, stop=stop, log=log)
  finally:
    stop.set()
    trajectory_queue.close(cancel_pending_enqueues=True)
    for thread in threads:
      thread.join(timeout=30)
  if errors:
    raise RuntimeError(f"An actor thread failed: {errors[0]!r}") from errors[0]
  return result

