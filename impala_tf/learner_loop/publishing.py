"""Weight publishing: the part of the learner's loop that actors read."""

from impala_tf.learner_loop import base
from impala_tf.runtime import weights as weights_runtime


class WeightPublisher(base.LoopPart):
  """Publishes the learner's weights before the first update (version =
  the update count, 0 for a new run) and after every update."""

  def __init__(self, weights: weights_runtime.WeightBuffer):
    self._weights = weights

  def publish(self, loop):
    self._weights.publish(weights_runtime.flatten(loop.learner.variables),
                          loop.num_updates)

  def start(self, loop):
    self.publish(loop)

  def after_update(self, loop, update):
    self.publish(loop)
