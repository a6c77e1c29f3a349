"""Weight publishing: the part of the learner's loop that actors read."""

import collections
from typing import Optional

import tensorflow as tf

from impala_tf.config import errors
from impala_tf.learner_loop import base
from impala_tf.runtime import weights as weights_runtime


class WeightPublisher(base.LoopPart):
  """Publishes the learner's weights before the first update (version =
  the update count, 0 for a new run) and after every applied update; never
  a non-finite weight (that ends the run with `DivergenceError`).

  With a controlled `policy_lag` of k (App. E.1), what is published after
  update u is the oldest of the last k + 1 versions kept: max(0, u − k) in
  a new run; in a resumed run the restored version until k more updates
  are made. Actors act with it, and the learner's stager takes only
  trajectories of the version published (`loop.published_version`). A
  skipped (non-finite) update publishes the same version again, so the
  actors, which make one unroll per publication, go on.
  """

  def __init__(self, weights: weights_runtime.WeightBuffer,
               policy_lag: Optional[int] = None):
    self._weights = weights
    self._history = (collections.deque(maxlen=policy_lag + 1)
                     if policy_lag is not None else None)
    self._published = None  # (flat weights, version) published last.

  def publish(self, loop):
    flat = weights_runtime.flatten(loop.learner.variables)
    if not bool(tf.reduce_all(tf.math.is_finite(flat))):
      raise errors.DivergenceError(
          f"The learner's weights are not finite after update "
          f"{loop.num_updates}; they were not published or saved. Try a "
          "lower --learning_rate or --max_grad_norm.")
    version = loop.num_updates
    if self._history is not None:
      # The oldest kept is version u − k once k + 1 are kept, else the
      # first (version 0 of a new run).
      self._history.append((version, tf.identity(flat)))
      version, flat = self._history[0]
    self._published = (flat, version)
    self._weights.publish(flat, version)
    loop.published_version = version

  def start(self, loop):
    self.publish(loop)

  def after_update(self, loop, update):
    if bool(update.logs["finite"]):
      self.publish(loop)
    elif self._history is not None:
      self._weights.publish(*self._published)
