"""TF1-style RMSProp: hand-computed steps and TF1's own optimiser."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import optimizers


def _tf1_result(make_optimizer, init, grads, lrs):
  """The variable after TF1's optimiser (`make_optimizer(lr)`) applied
  `grads` from `init`, at learning rates `lrs`."""
  graph = tf.Graph()
  with graph.as_default():
    var = tf.compat.v1.Variable(init)
    grad_ph = tf.compat.v1.placeholder(tf.float32, init.shape)
    lr_ph = tf.compat.v1.placeholder(tf.float32, ())
    train = make_optimizer(lr_ph).apply_gradients([(grad_ph, var)])
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for g, lr in zip(grads, lrs):
        sess.run(train, {grad_ph: g, lr_ph: lr})
      return sess.run(var)


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

  want = _tf1_result(
      lambda lr: tf.compat.v1.train.RMSPropOptimizer(
          lr, decay=0.95, momentum=momentum, epsilon=0.01), init, grads, lrs)

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


def _slices(values, indices, rows):
  return tf.IndexedSlices(tf.constant(values, tf.float32),
                          tf.constant(indices, tf.int64),
                          tf.constant([rows, len(values[0])], tf.int64))


def test_a_sparse_gradient_updates_only_its_rows_as_tf1_does():
  # An embedding of 5 rows; the batch looked up rows 3, 1 and 3 again.
  init = np.arange(10, dtype=np.float32).reshape(5, 2)
  var = tf.Variable(init)
  opt = optimizers.RMSProp(decay=0.9, epsilon=0.1)
  opt.initialize([var])
  grad = _slices([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]], [3, 1, 3], 5)
  for _ in range(2):
    opt.apply([grad], [var], learning_rate=0.01)
  (ms,) = [v for v in opt.variables if "mean_square" in v.name]
  # Untouched rows: mean square still TF1's initial 1, weights as they were
  # (made dense, both steps would have decayed their mean square to 0.81).
  np.testing.assert_array_equal(ms.numpy()[[0, 2, 4]], 1.0)
  np.testing.assert_array_equal(var.numpy()[[0, 2, 4]], init[[0, 2, 4]])
  # Touched rows, by hand: row 3's two gradients are summed (TF1 sums
  # repeated indices before its sparse apply), then the dense formula.
  for row, g in ((1, np.array([0.5, 0.0])), (3, np.array([4.0, -1.0]))):
    ms_1 = 0.9 * 1.0 + 0.1 * g**2
    ms_2 = 0.9 * ms_1 + 0.1 * g**2
    want = init[row] - 0.01 * g / np.sqrt(ms_1 + 0.1) - 0.01 * g / np.sqrt(
        ms_2 + 0.1)
    np.testing.assert_allclose(ms.numpy()[row], ms_2, rtol=1e-6)
    np.testing.assert_allclose(var.numpy()[row], want, rtol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_sparse_updates_match_tf1_rmsprop_optimizer(momentum):
  rng = np.random.default_rng(1)
  init = rng.normal(size=(8, 3)).astype(np.float32)
  # Each step makes 4 lookups of the first 6 of 8 rows, repeats included:
  # rows 6 and 7 are never touched.
  indices = [rng.integers(0, 6, 4) for _ in range(4)]
  values = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(4)]
  lrs = [0.01, 0.005, 0.02, 0.001]

  graph = tf.Graph()
  with graph.as_default():
    var = tf.compat.v1.Variable(init)
    values_ph = tf.compat.v1.placeholder(tf.float32, (4, 3))
    indices_ph = tf.compat.v1.placeholder(tf.int64, (4,))
    lr_ph = tf.compat.v1.placeholder(tf.float32, ())
    tf1_opt = tf.compat.v1.train.RMSPropOptimizer(
        lr_ph, decay=0.95, momentum=momentum, epsilon=0.01)
    train = tf1_opt.apply_gradients([(tf.IndexedSlices(
        values_ph, indices_ph, tf.constant([8, 3], tf.int64)), var)])
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for v, i, lr in zip(values, indices, lrs):
        sess.run(train, {values_ph: v, indices_ph: i, lr_ph: lr})
      want = sess.run(var)

  ours = tf.Variable(init)
  opt = optimizers.RMSProp(decay=0.95, epsilon=0.01, momentum=momentum)
  opt.initialize([ours])
  for v, i, lr in zip(values, indices, lrs):
    opt.apply([_slices(v, i, 8)], [ours], learning_rate=lr)
  np.testing.assert_allclose(ours.numpy(), want, rtol=1e-5, atol=1e-6)
  # Rows no step touched are where they started.
  np.testing.assert_array_equal(ours.numpy()[6:], init[6:])


def test_adam_matches_tf1_adam_optimizer_over_several_steps():
  # TF1's AdamOptimizer folds the bias corrections into the rate, as ours.
  rng = np.random.default_rng(1)
  init = rng.normal(size=(3, 2)).astype(np.float32)
  grads = rng.normal(size=(5, 3, 2)).astype(np.float32)
  lrs = [0.01, 0.005, 0.02, 0.001, 0.01]

  want = _tf1_result(
      lambda lr: tf.compat.v1.train.AdamOptimizer(lr, beta1=0.8, beta2=0.99,
                                                  epsilon=1e-3),
      init, grads, lrs)

  ours = tf.Variable(init)
  opt = optimizers.Adam(beta1=0.8, beta2=0.99, epsilon=1e-3)
  opt.initialize([ours])
  step = tf.function(lambda g, lr: opt.apply([g], [ours], learning_rate=lr))
  for g, lr in zip(grads, lrs):
    step(tf.constant(g), tf.constant(lr))
  np.testing.assert_allclose(ours.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(beta1=1.0), dict(beta2=-0.1),
                                    dict(epsilon=0.0)])
def test_bad_adam_hyperparameters_are_rejected(kwargs):
  with pytest.raises(ValueError, match="Adam"):
    optimizers.Adam(**kwargs)
