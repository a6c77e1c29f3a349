"""Progress reporting: the part of the learner's loop that prints a line and
writes TensorBoard summaries every interval, and the final "Done" line."""

import math
from typing import Optional

import numpy as np
import tensorflow as tf

from impala_tf.learner_loop import base
from impala_tf.learner_loop import episodes


def format_duration(seconds: float) -> str:
  """H:MM:SS, or "?" for an unknown (infinite) duration."""
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressReporter(base.LoopPart):
  """Every `interval_s` with at least one update since the last line: a
  progress line (frames, throughput, queue fill, the share of time the
  learner waited for data, policy lag, recent returns, losses, the loop's
  counters, time) and the same figures as TensorBoard summaries in `logdir`
  (if given), at the frame count as step. Every `interval_s` without one: a
  heartbeat line saying how long nothing came, with the loop's status
  texts (e.g. actors restarting and why).

  A run without a trajectory queue (anakin mode) has no queue fill, no
  waiting learner and no policy lag: its line leaves them out.

  Args:
    interval_s: seconds between lines.
    logdir: where the summaries go; None writes none.
  """

  def __init__(self, interval_s: float = 5.0, logdir: Optional[str] = None):
    self.interval_s = interval_s
    self.logdir = logdir
    self._writer = None
    self._lags: list[np.ndarray] = []
    self._logs: dict = {}
    self._last = None  # (time, frames, updates, wait_s) at the last line.

  def start(self, loop):
    if self.logdir:
      self._writer = tf.summary.create_file_writer(self.logdir)
    self._last = (loop.start_time, loop.num_frames, loop.num_updates,
                  loop.wait_s)

  def after_update(self, loop, update):
    self._lags.append(update.policy_lag)
    self._logs = update.logs

  def tick(self, loop, now):
    last_time, last_frames, last_updates, last_wait = self._last
    elapsed = now - last_time
    if elapsed < self.interval_s:
      return
    if not self._lags:
      # A heartbeat: the run is alive, and says why nothing arrives.
      waited = now - loop.last_batch_time
      # In the order of the keys, not of which part spoke first (a busy
      # machine reordered "no actor heard from yet" and the restarts).
      loop.log(f"waiting for actors: no trajectory for {waited:.0f} s"
               + "".join(f"; {loop.status[key]}"
                         for key in sorted(loop.status) if loop.status[key]))
      # The wait so far belongs to this heartbeat's interval, not the next
      # progress line's (which then read more than 100%).
      self._last = (now, last_frames, last_updates, loop.wait_s)
      return
    frames, updates = loop.num_frames, loop.num_updates
    fps = (frames - last_frames) / elapsed
    lag = np.concatenate(self._lags)
    progress = dict(
        frames=frames, fps=fps,
        updates_per_s=(updates - last_updates) / elapsed,
        queue_fill=loop.source.fill(),
        # A wait is counted when it ends, so one that began in the last
        # interval could push this one past 100%.
        learner_wait=min(1.0, (loop.wait_s - last_wait) / elapsed),
        lag_mean=float(lag.mean()), lag_max=int(lag.max()),
        logs={k: float(v) for k, v in self._logs.items() if k != "finite"},
        counters=dict(loop.counters))
    total = loop.experiment.config.total_frames
    remaining = (total - frames) / fps if fps > 0 else math.inf
    mean_returns = loop.episodes.mean_returns()
    loop.log(progress_line(progress, mean_returns, loop.episodes.total,
                           elapsed=now - loop.start_time,
                           remaining=remaining))
    if self._writer is not None:
      scores = {}
      if not any(math.isnan(v) for v in mean_returns.values()):
        scores = loop.experiment.suite_object.suite_scores(mean_returns)
      write_summaries(self._writer, progress, lag, mean_returns, scores)
    self._last = (now, frames, updates, loop.wait_s)
    self._lags = []

  def end(self, loop):
    if self._writer is not None:
      self._writer.flush()


def progress_line(progress: dict, mean_returns: dict, num_episodes: int,
                  elapsed: float, remaining: float) -> str:
  """The one-line summary of `ProgressReporter.tick`."""
  logs = progress["logs"]
  finite = [v for v in mean_returns.values() if not math.isnan(v)]
  if not finite:
    returns = "no games yet"
  elif len(mean_returns) == 1:
    (value,) = mean_returns.values()
    returns = f"return {value:.2f}"
  else:
    returns = (f"return (mean of {len(finite)}/{len(mean_returns)} levels) "
               f"{np.mean(finite):.2f}")
  counters = "".join(f" | {name.replace('_', ' ')} {value:,}"
                     for name, value in progress.get("counters", {}).items()
                     if value)
  queue = ""
  if progress["queue_fill"] is not None:
    queue = (f" | queue {progress['queue_fill']:.0%} | learner waits "
             f"{progress['learner_wait']:.0%} | lag "
             f"{progress['lag_mean']:.1f} (max {progress['lag_max']})")
  return (
      f"frames {progress['frames']:,} | {progress['fps']:,.0f} f/s | "
      f"{progress['updates_per_s']:.1f} upd/s{queue} | {returns}"
      f"{f' ({num_episodes} eps)' if finite else ''} | "
      f"loss {logs.get('total_loss', math.nan):.3g} pg "
      f"{logs.get('pg_loss', math.nan):.3g} base "
      f"{logs.get('baseline_loss', math.nan):.3g} ent "
      f"{logs.get('entropy_loss', math.nan):.3g}{counters} | "
      f"{format_duration(elapsed)} elapsed, "
      # The last update may overshoot the frame budget.
      f"{format_duration(max(remaining, 0.0))} left")


def write_summaries(writer, progress: dict, lag: np.ndarray,
                    mean_returns: dict, scores: dict):
  """The figures of one progress line as summaries at step = frames, and
  the suite's normalised scores (`score/mean`, ...: percent) once every
  level has a recent return."""
  with writer.as_default(step=progress["frames"]):
    tf.summary.scalar("throughput/frames_per_s", progress["fps"])
    tf.summary.scalar("throughput/updates_per_s", progress["updates_per_s"])
    if progress["queue_fill"] is not None:
      tf.summary.scalar("queue/fill", progress["queue_fill"])
      tf.summary.scalar("queue/learner_wait_fraction",
                        progress["learner_wait"])
      tf.summary.scalar("policy_lag/mean", progress["lag_mean"])
      tf.summary.histogram("policy_lag/distribution", lag)
    for name, value in progress["logs"].items():
      tf.summary.scalar(f"learner/{name}", value)
    for level, value in mean_returns.items():
      if not math.isnan(value):
        tf.summary.scalar(f"return/{level}", value)
    for name, value in scores.items():
      tf.summary.scalar(f"score/{name}", value)
    for name, value in progress.get("counters", {}).items():
      tf.summary.scalar(f"counters/{name}", value)


def done_line(result, total_frames: int = 0) -> str:
  """The final line of a run (`loop.TrainingResult`): "Done: ..." when it
  spent its `total_frames`, "Stopped at ..." when it was stopped before
  (SIGTERM, Ctrl-C), saying that the same command resumes it."""
  if result.num_frames < total_frames:
    head = (f"Stopped at {result.num_frames:,} of {total_frames:,} frames "
            f"after {result.num_updates:,} updates in "
            f"{format_duration(result.elapsed_s)}; the same command resumes "
            "it")
  else:
    head = (f"Done: {result.num_frames:,} frames, {result.num_updates:,} "
            f"updates in {format_duration(result.elapsed_s)}")
  return (f"{head}; mean return over "
          f"the last {episodes.RETURN_WINDOW} episodes: " + ", ".join(
              f"{level} {value:.2f} ({result.episodes[level]} episodes)"
              if result.episodes[level] else f"{level} no games yet"
              for level, value in result.mean_returns.items()))
