"""The divergence guard: the part of the learner's loop that ends a run whose
updates stay non-finite.

The update itself never applies a non-finite loss or gradient
(`learner.Learner`: it is skipped and reported as `finite=False`). This part
counts the skipped updates (the `nonfinite_updates` counter of the progress
line and of TensorBoard) and, after `max_consecutive` in a row, ends the run
with one `errors.DivergenceError` line that says from which update on, which loss
terms went non-finite first, the newest checkpoint kept, and what to try.
"""

import math

from impala_tf.config import errors
from impala_tf.learner_loop import base
from impala_tf.learner_loop import checkpointing

_TERMS = ("pg_loss", "baseline_loss", "entropy_loss", "grad_norm")


class DivergenceGuard(base.LoopPart):
  """See the module docstring."""

  def __init__(self, max_consecutive: int = 5):
    if max_consecutive < 1:
      raise ValueError(f"max_consecutive must be at least 1, got "
                       f"{max_consecutive}.")
    self.max_consecutive = max_consecutive
    self.consecutive = 0
    self._first = None  # (update number, terms) where the streak began.

  def start(self, loop):
    loop.counters.setdefault("nonfinite_updates", 0)

  def after_update(self, loop, update):
    if bool(update.logs["finite"]):
      self.consecutive = 0
      self._first = None
      return
    loop.counters["nonfinite_updates"] += 1
    self.consecutive += 1
    if self._first is None:
      terms = [f"{name} {float(update.logs[name])}" for name in _TERMS
               if not math.isfinite(float(update.logs[name]))]
      self._first = (loop.num_updates + 1, terms)
    if self.consecutive >= self.max_consecutive:
      raise errors.DivergenceError(self._message(loop))

  def _message(self, loop) -> str:
    number, terms = self._first
    checkpointer = loop.part(checkpointing.Checkpointer)
    newest = checkpointer.latest() if checkpointer else None
    config = loop.experiment.config
    return (
        f"The run diverged: {self.consecutive} updates in a row from update "
        f"{number} on had a non-finite loss or gradient ({', '.join(terms)} "
        "first). None was applied, published or saved; the newest checkpoint "
        f"is {newest or 'none (no --logdir or none saved yet)'}. Try a lower "
        f"--learning_rate (now {config.learning_rate:g}) or --max_grad_norm "
        f"(now {config.max_grad_norm}), and resume with the same --logdir or "
        "start afresh in another.")
