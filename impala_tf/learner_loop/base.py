"""What every part of the learner's loop implements, and what it is given."""

from typing import NamedTuple

import numpy as np


class Update(NamedTuple):
  """One update as the parts see it.

  Attributes:
    batch: the staged batch the update trained on (`[B, T+1, ...]`).
    logs: the update's scalar logs (`learner.Learner.update`).
    policy_lag: int64 `[F]`, for each of the batch's F fresh (not replayed)
      trajectories, the learner updates between the weights it was made
      with and the weights it was trained on.
    replayed: bool `[B]`, which trajectories came from replay (already
      seen by earlier updates; their episodes were counted then).
  """
  batch: dict
  logs: dict
  policy_lag: np.ndarray
  replayed: np.ndarray


class LoopPart:
  """A part of the learner's loop; every hook is optional.

  * `start(loop)` once before the first update (restore a checkpoint,
    publish the first weights);
  * `after_update(loop, update)` after every update;
  * `tick(loop, now)` after every update and every idle second (periodic
    work: progress lines, checkpoints);
  * `end(loop)` once on the way out, whatever the reason (last checkpoint,
    flush summaries), in reverse order of the parts.

  `loop` is the running `loop.LearnerLoop`.

  A part that sets `owns_hyperparameters` (population-based training)
  changes the learner's tunable hyperparameters itself, so a resumed run
  keeps the checkpoint's instead of taking the config's.
  """

  owns_hyperparameters = False

  def start(self, loop) -> None:
    del loop

  def after_update(self, loop, update: Update) -> None:
    del loop, update

  def tick(self, loop, now: float) -> None:
    del loop, now

  def end(self, loop) -> None:
    del loop
