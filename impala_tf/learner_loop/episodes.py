"""Finished-episode statistics read off the trajectories the learner trains on."""

import collections
import math

import numpy as np

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
  after the update.
  """

  def __init__(self, levels):
    self.levels = tuple(levels)
    self._returns = [collections.deque(maxlen=RETURN_WINDOW) for _ in levels]
    self.counts = [0] * len(levels)

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
