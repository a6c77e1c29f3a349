"""TF1-style RMSProp: hand-computed steps and TF1's own optimiser."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf import optimizers


def test_one_step_matches_hand_computed_tf1_update():
  var = tf.Variable([1.0, -2.0])
  opt = optimizers.RMSProp(decay=0.9, epsilon=0.1)
  opt.initialize([var])
  opt.apply([tf.constant([2.0, 0.5])], [var], learning_rate=0.01)
  # ms starts at 1: ms = 0.9 + 0.1 g²; θ −= lr · g / sqrt(ms + ε).
  ms = 0.9 + 0.1 * np.array([4.0, 0.25])
  want = np.array([1.0, -2.0]) - 0.01 * np.array([2.0, 0.5]) / np.sqrt(
      ms + 0.1)
  np.testing.assert_allclose(var.numpy(), want, rtol=1e-6)


def test_zero_initial_mean_square_gives_the_modern_larger_first_step():
  var = tf.Variable([1.0])
  opt = optimizers.RMSProp(decay=0.9, epsilon=0.1, initial_mean_square=0.0)
  opt.initialize([var])
  opt.apply([tf.constant([2.0])], [var], learning_rate=0.01)
  np.testing.assert_allclose(var.numpy(), 1.0 - 0.02 / np.sqrt(0.4 + 0.1),
                             rtol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_matches_tf1_rmsprop_optimizer_over_several_steps(momentum):
  rng = np.random.default_rng(0)
  init = rng.normal(size=(3, 2)).astype(np.float32)
  grads = rng.normal(size=(4, 3, 2)).astype(np.float32)
  lrs = [0.01, 0.005, 0.02, 0.001]

  graph = tf.Graph()
  with graph.as_default():
    var = tf.compat.v1.Variable(init)
    grad_ph = tf.compat.v1.placeholder(tf.float32, (3, 2))
    lr_ph = tf.compat.v1.placeholder(tf.float32, ())
    tf1_opt = tf.compat.v1.train.RMSPropOptimizer(
        lr_ph, decay=0.95, momentum=momentum, epsilon=0.01)
    train = tf1_opt.apply_gradients([(grad_ph, var)])
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for g, lr in zip(grads, lrs):
        sess.run(train, {grad_ph: g, lr_ph: lr})
      want = sess.run(var)

  ours = tf.Variable(init)
  opt = optimizers.RMSProp(decay=0.95, epsilon=0.01, momentum=momentum)
  opt.initialize([ours])
  for g, lr in zip(grads, lrs):
    opt.apply([tf.constant(g)], [ours], learning_rate=lr)
  np.testing.assert_allclose(ours.numpy(), want, rtol=1e-5, atol=1e-6)


def test_apply_before_initialize_is_an_error():
  with pytest.raises(RuntimeError, match="initialize"):
    optimizers.RMSProp().apply([tf.constant(1.0)], [tf.Variable(1.0)], 0.1)


@pytest.mark.parametrize("kwargs", [dict(decay=1.0), dict(epsilon=0.0),
                                    dict(momentum=-0.1)])
def test_bad_hyperparameters_are_rejected(kwargs):
  with pytest.raises(ValueError):
    optimizers.RMSProp(**kwargs)
