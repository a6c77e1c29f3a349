"""Which errors of an op on the learner mean that the learner is gone."""

import tensorflow as tf

from impala_tf.runtime import server


def test_errors_that_mean_the_learner_is_gone():
  assert server.is_learner_lost(tf.errors.UnavailableError(None, None, "x"))
  assert server.is_learner_lost(TypeError(
      "Binding inputs to tf.function failed due to `recvmsg:Connection reset "
      "by peer`"))
  # A learner whose server dropped this actor's context (seen after both
  # were stopped for half an hour): the actor must reconnect, not crash.
  assert server.is_learner_lost(TypeError(
      "Binding inputs to tf.function failed due to `Unable to find a "
      "context_id matching the specified one (1872700876146659539). Perhaps "
      "the worker was restarted, or the context was GC'd?`"))


def test_other_errors_are_bugs_to_report():
  assert not server.is_learner_lost(TypeError("unsupported operand type"))
  assert not server.is_learner_lost(ValueError("connection reset"))
  assert not server.is_learner_lost(
      tf.errors.InvalidArgumentError(None, None, "shape mismatch"))
