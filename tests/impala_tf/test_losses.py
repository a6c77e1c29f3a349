"""Losses and reward clipping on hand-computed examples."""

import math

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import losses

# A 2-step, 2-action example (T=2, B=1): π = [0.25, 0.75] then [0.5, 0.5].
LOGITS = np.array([[[0.0, math.log(3.0)]], [[0.0, 0.0]]], np.float32)
ACTIONS = np.array([[1], [0]], np.int32)
PG_ADVANTAGES = np.array([[2.0], [-1.0]], np.float32)
VALUE_ERRORS = np.array([[1.0], [-3.0]], np.float32)  # v_t − V(x_t)

PG_SUM = -(2.0 * math.log(0.75) - 1.0 * math.log(0.5))
BASELINE_SUM = 0.5 * (1.0 + 9.0)
ENTROPY_SUM = -((-0.25 * math.log(0.25) - 0.75 * math.log(0.75)) +
                math.log(2.0))


@pytest.mark.parametrize("reduction,scale", [("sum", 1.0), ("mean", 0.5)])
def test_losses_on_a_hand_computed_example(reduction, scale):
  assert losses.policy_gradient_loss(
      LOGITS, ACTIONS, PG_ADVANTAGES, reduction).numpy() == pytest.approx(
          scale * PG_SUM, rel=1e-5)
  assert losses.baseline_loss(VALUE_ERRORS, reduction).numpy() == (
      pytest.approx(scale * BASELINE_SUM, rel=1e-6))
  assert losses.entropy_loss(LOGITS, reduction).numpy() == pytest.approx(
      scale * ENTROPY_SUM, rel=1e-5)


def test_policy_gradient_treats_advantages_as_constants():
  logits = tf.Variable(LOGITS)
  advantages = tf.Variable(PG_ADVANTAGES)
  with tf.GradientTape(persistent=True) as tape:
    loss = losses.policy_gradient_loss(logits, ACTIONS, advantages)
  assert tape.gradient(loss, advantages) is None
  # d/dlogits of −A·log softmax(a) = −A·(onehot(a) − π).
  want = -PG_ADVANTAGES[..., None] * (
      np.eye(2)[ACTIONS] - np.array([[[0.25, 0.75]], [[0.5, 0.5]]]))
  np.testing.assert_allclose(tape.gradient(loss, logits), want, rtol=1e-5)


def test_entropy_gradient_raises_entropy():
  logits = tf.Variable(LOGITS)
  with tf.GradientTape() as tape:
    loss = losses.entropy_loss(logits)
  stepped = logits - 0.1 * tape.gradient(loss, logits)
  assert losses.entropy_loss(stepped).numpy() < loss.numpy()


REWARDS = np.array([-2.0, -0.5, 0.0, 0.5, 3.0, -100.0, 100.0], np.float32)


@pytest.mark.parametrize("mode,want", [
    ("abs_one", [-1.0, -0.5, 0.0, 0.5, 1.0, -1.0, 1.0]),
    # 0.3·min(tanh r, 0) + 5·max(tanh r, 0): range (−0.3, 5).
    ("soft_asymmetric", [-0.28920827, -0.13863515, 0.0, 2.3105858,
                         4.9752738, -0.3, 5.0]),
    # The released code: 1.5·tanh(r/5) below 0, 5·tanh(r/5) above.
    ("scalable_agent_soft_asymmetric", [-0.56992344, -0.14950199, 0.0,
                                        0.49833997, 2.6852479, -1.5, 5.0]),
    ("none", REWARDS.tolist()),
])
def test_reward_clipping_modes(mode, want):
  np.testing.assert_allclose(losses.clip_rewards(REWARDS, mode), want,
                             rtol=1e-5, atol=1e-6)


def test_unknown_modes_are_rejected():
  with pytest.raises(ValueError, match="abs_one"):
    losses.clip_rewards(REWARDS, "tanh")
  with pytest.raises(ValueError, match="sum"):
    losses.baseline_loss(VALUE_ERRORS, "median")


def test_normalized_advantages_have_mean_0_and_deviation_1():
  advantages = tf.constant([[0.5, -1.0, 3.0], [0.0, 2.0, -0.5]])
  got = losses.normalize_advantages(advantages).numpy()
  assert abs(got.mean()) < 1e-6 and abs(got.std() - 1.0) < 1e-6
  # An affine map of its input: the order and the ratios of gaps kept.
  np.testing.assert_array_equal(np.argsort(got, axis=None),
                                np.argsort(advantages.numpy(), axis=None))
  # Rewards ten times larger (advantages ten times larger): the same.
  np.testing.assert_allclose(
      losses.normalize_advantages(10.0 * advantages).numpy(), got,
      rtol=1e-5)
  # All equal: zeros, not NaN.
  np.testing.assert_array_equal(
      losses.normalize_advantages(tf.fill([4, 2], 0.3)).numpy(),
      np.zeros((4, 2), np.float32))


def test_clipped_surrogate_at_the_anchor_has_the_policy_gradients_gradient():
  logits = tf.Variable(LOGITS)
  with tf.GradientTape(persistent=True) as tape:
    plain = losses.policy_gradient_loss(logits, ACTIONS, PG_ADVANTAGES)
    clipped = losses.clipped_surrogate_loss(logits, LOGITS, ACTIONS,
                                            PG_ADVANTAGES, clip=0.2)
  # Its value at r = 1 is −Σ A_t (the ratio, not log π).
  assert float(clipped) == pytest.approx(-float(PG_ADVANTAGES.sum()))
  np.testing.assert_allclose(tape.gradient(clipped, logits).numpy(),
                             tape.gradient(plain, logits).numpy(), rtol=1e-6)


def test_clipped_surrogate_stops_where_the_ratio_left_the_range():
  # Step 0 (A = +2, a = 1): π(1) raised from 0.75 to 0.9, r = 1.2 > 1.1:
  # the term is clipped, its gradient 0. Step 1 (A = −1, a = 0): π(0)
  # raised from 0.5 to 0.6, r = 1.2, which A < 0 does not clip (min picks
  # the unclipped r·A): its gradient is r·A·∇log π, nonzero.
  moved = np.array([[[0.0, math.log(9.0)]], [[math.log(1.5), 0.0]]],
                   np.float32)
  logits = tf.Variable(moved)
  with tf.GradientTape() as tape:
    loss = losses.clipped_surrogate_loss(logits, LOGITS, ACTIONS,
                                         PG_ADVANTAGES, clip=0.1)
  gradient = tape.gradient(loss, logits).numpy()
  np.testing.assert_array_equal(gradient[0], np.zeros((1, 2), np.float32))
  # −r·A·∇log π(0) with π = [0.6, 0.4]: ∇ = [0.4, −0.4], r·A = −1.2.
  np.testing.assert_allclose(gradient[1], [[0.48, -0.48]], rtol=1e-5)
  # The clipped term's value: −(1 + 0.1)·2; the other: −1.2·(−1).
  assert float(loss) == pytest.approx(-2.2 + 1.2, rel=1e-5)
