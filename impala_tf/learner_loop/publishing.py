"""Weight publishing: the part of the learner's loop that actors read."""

import collections
from typing import Optional

import tensorflow as tf

from impala_tf.learner_loop import base
from impala_tf.learner_loop import divergence
from impala_tf.runtime import weights as weights_runtime


class WeightPublisher(base.LoopPart):
  """Publishes the learner's weights before the first update (version =
  the update count, 0 for a new run) and after every applied update; never
  a non-finite weight (that ends the run with `DivergenceError`).

  With a controlled `policy_lag` of k (App. E.1), what is published after
  update u is the weights of version max(0, u − k), kept from then: actors
  act with weights exactly k updates old (the learner's stager takes only
  trajectories of that version).
  """

  def __init__(self, weights: weights_runtime.WeightBuffer,
               policy_lag: Optional[int] = None):
    self._weights = weights
    self._history = (collections.deque(maxlen=policy_lag + 1)
                     if policy_lag is not None else None)

  def publish(self, loop):
    flat = weights_runtime.flatten(loop.learner.variables)
    if not bool(tf.reduce_all(tf.math.is_finite(flat))):
      raise divergence.DivergenceError(
          f"The learner's weights are not finite after update "
          f"{loop.num_updates}; they were not published or saved. Try a "
          "lower --learning_rate or --max_grad_norm.")
    version = loop.num_updates
    if self._history is not None:
      # The oldest kept is version u − k once k + 1 are kept, else the
      # first (version 0 of a new run).
      self._history.append((version, tf.identity(flat)))
      version, flat = self._history[0]
    self._weights.publish(flat, version)

  def start(self, loop):
    self.publish(loop)

  def after_update(self, loop, update):
    if bool(update.logs["finite"]):
      self.publish(loop)
