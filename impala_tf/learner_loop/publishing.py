"""Weight publishing: the part of the learner's loop that actors read."""

import tensorflow as tf

from impala_tf.learner_loop import base
from impala_tf.learner_loop import divergence
from impala_tf.runtime import weights as weights_runtime


class WeightPublisher(base.LoopPart):
  """Publishes the learner's weights before the first update (version =
  the update count, 0 for a new run) and after every applied update; never
  a non-finite weight (that ends the run with `DivergenceError`)."""

  def __init__(self, weights: weights_runtime.WeightBuffer):
    self._weights = weights

  def publish(self, loop):
    flat = weights_runtime.flatten(loop.learner.variables)
    if not bool(tf.reduce_all(tf.math.is_finite(flat))):
      raise divergence.DivergenceError(
          f"The learner's weights are not finite after update "
          f"{loop.num_updates}; they were not published or saved. Try a "
          "lower --learning_rate or --max_grad_norm.")
    self._weights.publish(flat, loop.num_updates)

  def start(self, loop):
    self.publish(loop)

  def after_update(self, loop, update):
    if bool(update.logs["finite"]):
      self.publish(loop)
