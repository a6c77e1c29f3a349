"""Finished-episode statistics read off the trajectories the learner trains on."""

import collections
import math
from typing import Optional

import numpy as np
import tensorflow as tf

from impala_tf.learner_loop import base

RETURN_WINDOW = 100  # episodes per level in the reported mean return


def finished_returns(episode_return: np.ndarray, level_id: np.ndarray
                     ) -> list[tuple[int, float]]:
  """(level id, return) of every episode that ended in a batch.

  `episode_return` `[B, T+1]` (NaN where no game ended), `level_id` `[B]`.
  Step 0 repeats the previous unroll's last step: skipped.
  """
  finished = ~np.isnan(episode_return[:, 1:])
  return [(int(level_id[b]), float(episode_return[b, t + 1]))
          for b, t in zip(*np.nonzero(finished))]


def fresh_returns(update) -> list[tuple[int, float]]:
  """`finished_returns` of an update's fresh trajectories (replayed ones
  were counted when they were fresh)."""
  fresh = ~np.asarray(update.replayed)
  return finished_returns(np.asarray(update.batch["episode_return"])[fresh],
                          np.asarray(update.batch["level_id"])[fresh])


class EpisodeStats(base.LoopPart):
  """The last `RETURN_WINDOW` returns of every level, and counts.

  As a part of the learner's loop it reads each batch's `episode_return`
  after the update. The run's checkpoints hold the windows and counts
  (`checkpointable`), so a resumed run's first progress lines and its
  result average the games before the stop too.
  """

  def __init__(self, levels):
    self.levels = tuple(levels)
    self._returns = [collections.deque(maxlen=RETURN_WINDOW) for _ in levels]
    self.counts = [0] * len(levels)
    self._saved: Optional[tf.Module] = None

  def checkpointable(self) -> tf.Module:
    """Variables that hold the windows and counts in a checkpoint:
    `returns` `[levels, RETURN_WINDOW]` (oldest first, NaN past the games
    seen) and `counts` `[levels]`. `to_checkpoint` fills them before a
    save, `from_checkpoint` reads them back after a restore; a checkpoint
    written before they were saved leaves them empty."""
    if self._saved is None:
      self._saved = tf.Module(name="episode_stats")
      self._saved.returns = tf.Variable(
          tf.fill([len(self.levels), RETURN_WINDOW],
                  tf.constant(math.nan, tf.float64)),
          trainable=False, name="returns")
      self._saved.counts = tf.Variable(
          tf.zeros([len(self.levels)], tf.int64), trainable=False,
          name="counts")
    return self._saved

  def to_checkpoint(self):
    """Writes the windows and counts into `checkpointable()`."""
    window = np.full((len(self.levels), RETURN_WINDOW), np.nan)
    for row, returns in zip(window, self._returns):
      row[:len(returns)] = list(returns)
    saved = self.checkpointable()
    saved.returns.assign(window)
    saved.counts.assign(np.asarray(self.counts, np.int64))

  def from_checkpoint(self):
    """Reads the windows and counts back from `checkpointable()`."""
    saved = self.checkpointable()
    for returns, row in zip(self._returns, saved.returns.numpy()):
      returns.clear()
      returns.extend(float(v) for v in row if not np.isnan(v))
    self.counts = [int(c) for c in saved.counts.numpy()]

  def add(self, episode_return: np.ndarray, level_id: np.ndarray):
    """`episode_return` `[B, T+1]` (NaN where no game ended), `level_id`
    `[B]` (`finished_returns`)."""
    self._record(finished_returns(episode_return, level_id))

  def _record(self, returns: list[tuple[int, float]]):
    for level, value in returns:
      self._returns[level].append(value)
      self.counts[level] += 1

  def mean_returns(self) -> dict[str, float]:
    """level → mean of its recent returns (NaN before the first)."""
    return {level: (float(np.mean(r)) if r else math.nan)
            for level, r in zip(self.levels, self._returns)}

  @property
  def total(self) -> int:
    return sum(self.counts)

  def after_update(self, loop, update):
    del loop
    self._record(fresh_returns(update))
