"""The four off-policy corrections of Sec. 5.2.2 on a hand-computed example
with a known π/μ mismatch, and their agreement on on-policy data."""

import math

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import corrections
from impala_tf.agent import losses
from impala_tf.config import presets

# T = 2 steps of one unroll, 2 actions, action 0 taken both times.
# μ is uniform; π(a_0|x_0) = 0.8 and π(a_1|x_1) = 0.25, so π/μ = 1.6, 0.5
# and with ρ̄ = c̄ = 1: ρ = c = (1, 0.5).
MU = np.log([[[0.5, 0.5]], [[0.5, 0.5]]])
PI = np.log([[[0.8, 0.2]], [[0.25, 0.75]]])
ACTIONS = [[0], [0]]
REWARDS = [[1.0], [2.0]]
DISCOUNTS = [[0.9], [0.9]]
VALUES = [[0.5], [1.0]]     # V(x_0), V(x_1)
BOOTSTRAP = [2.0]           # V(x_2)

# By hand (Remark 1, backward from v_2 = V(x_2) = 2):
#   δ_1 = 0.5 (2 + 0.9·2 − 1) = 1.4;           v_1 = 1 + 1.4 = 2.4
#   δ_0 = 1 (1 + 0.9·1 − 0.5) = 1.4;           v_0 = 0.5 + 1.4 + 0.9·1·(2.4 − 1) = 3.16
#   A_0 = 1 (1 + 0.9·2.4 − 0.5) = 2.66;        A_1 = 0.5 (2 + 0.9·2 − 1) = 1.4
# Uncorrected n-step returns: G_1 = 2 + 0.9·2 = 3.8, G_0 = 1 + 0.9·3.8 = 4.42;
# their advantages: r_t + γ G_{t+1} − V(x_t) = (1 + 3.42 − 0.5, 2 + 1.8 − 1)
# = (3.92, 2.8).
EXPECTED = {
    "vtrace": ([3.16, 2.4], [2.66, 1.4]),
    "one_step_is": ([4.42, 3.8], [1 * 3.92, 0.5 * 2.8]),
    "epsilon": ([4.42, 3.8], [3.92, 2.8]),
    "none": ([4.42, 3.8], [3.92, 2.8]),
}


def _targets(correction, target=PI, **kwargs):
  return corrections.targets(
      correction, tf.constant(MU, tf.float32), tf.constant(target, tf.float32),
      tf.constant(ACTIONS), tf.constant(DISCOUNTS), tf.constant(REWARDS),
      tf.constant(VALUES), tf.constant(BOOTSTRAP), **kwargs)


@pytest.mark.parametrize("correction", corrections.CORRECTIONS)
def test_each_correction_matches_its_hand_computed_targets(correction):
  result = _targets(correction)
  vs, advantages = EXPECTED[correction]
  np.testing.assert_allclose(result.vs.numpy()[:, 0], vs, rtol=1e-5)
  np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0], advantages,
                             rtol=1e-5)
  np.testing.assert_allclose(result.log_rhos.numpy()[:, 0],
                             np.log([1.6, 0.5]), rtol=1e-5)
  assert result.log_prob_epsilon == (1e-6 if correction == "epsilon" else 0)


def test_appendix_e3_bootstraps_the_advantage_from_the_value():
  # A_t = ρ_t (r_t + γ V(x_{t+1}) − V(x_t)) = (1 (1 + 0.9 − 0.5), 0.5 (2 +
  # 1.8 − 1)) = (1.4, 1.4); the value targets are V-trace's as before.
  result = _targets("vtrace", pg_bootstrap="value")
  np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0], [1.4, 1.4],
                             rtol=1e-5)
  np.testing.assert_allclose(result.vs.numpy()[:, 0], [3.16, 2.4], rtol=1e-5)


def test_a_larger_rho_bar_changes_the_advantage_weights():
  # ρ̄ = 10 lets π/μ = 1.6 through at step 0.
  result = _targets("one_step_is", clip_pg_rho_threshold=10.0)
  np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0],
                             [1.6 * 3.92, 0.5 * 2.8], rtol=1e-5)


@pytest.mark.parametrize("correction", ["one_step_is", "epsilon", "none"])
@pytest.mark.parametrize("lambda_", [0.0, 0.5])
def test_lambda_gives_the_uncorrected_corrections_the_lambda_return(
    correction, lambda_):
  # c_t = λ on the uncorrected target: with δ_0 = 1 + 0.9·1 − 0.5 = 1.4 and
  # δ_1 = 2 + 0.9·2 − 1 = 2.8, v_1 = 1 + 2.8 = 3.8 (the last step has no
  # trace) and v_0 = 0.5 + 1.4 + 0.9·λ·2.8: 1.9 at λ = 0 (the one-step
  # target), 3.16 at λ = 0.5; λ = 1 gave the n-step 4.42 above.
  result = _targets(correction, lambda_=lambda_)
  np.testing.assert_allclose(result.vs.numpy()[:, 0],
                             [1.9 + 0.9 * lambda_ * 2.8, 3.8], rtol=1e-5)
  # The advantages bootstrap from v_1, which λ leaves as it was.
  _, advantages = EXPECTED[correction]
  np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0], advantages,
                             rtol=1e-5)


def test_on_policy_data_gives_every_correction_the_same_lambda_targets():
  # π = μ, λ = 0.5: V-trace's c_t = λ · 1 is the others' c_t = λ.
  results = [_targets(correction, target=MU, lambda_=0.5)
             for correction in corrections.CORRECTIONS]
  for result in results:
    np.testing.assert_allclose(result.vs.numpy()[:, 0], [3.16, 3.8],
                               rtol=1e-5)
    np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0],
                               [3.92, 2.8], rtol=1e-5)


def test_lambda_through_the_config_reaches_the_uncorrected_target():
  # λ < 1 with a non-V-trace correction is a valid configuration: it is
  # applied (the module docstring says why), not ignored or refused.
  config = presets.ATARI.replace(correction="none", vtrace_lambda=0.5)
  result = _targets(config.correction, lambda_=config.vtrace_lambda)
  assert float(result.vs[0, 0]) == pytest.approx(3.16, rel=1e-5)


@pytest.mark.parametrize("correction,advantages", [
    # ρ̄ = 10 lets π/μ = 1.6 through at step 0 of the advantage too.
    ("one_step_is", [1.6 * 3.92, 0.5 * 2.8]),
    # V-trace with ρ̄ = 10, c̄ = 1: δ_1 = 0.5·2.8 = 1.4, v_1 = 2.4;
    # A_0 = 1.6 (1 + 0.9·2.4 − 0.5) = 4.256.
    ("vtrace", [1.6 * 2.66, 0.5 * 2.8]),
])
def test_the_policy_gradient_rho_bar_follows_rho_bar_unless_given(
    correction, advantages):
  result = _targets(correction, clip_rho_threshold=10.0)
  np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0], advantages,
                             rtol=1e-5)
  # Given, it is its own: 1 truncates 1.6 back to 1; None does not truncate.
  given = _targets(correction, clip_rho_threshold=10.0,
                   clip_pg_rho_threshold=1.0)
  np.testing.assert_allclose(given.pg_advantages.numpy()[0, 0],
                             advantages[0] / 1.6, rtol=1e-5)
  unclipped = _targets(correction, clip_pg_rho_threshold=None)
  np.testing.assert_allclose(unclipped.pg_advantages.numpy()[0, 0],
                             1.6 * EXPECTED[correction][1][0], rtol=1e-5)


def test_on_policy_data_gives_every_correction_the_same_targets():
  # π = μ: every ratio is 1, so V-trace is the n-step return and no
  # correction weighs anything.
  for correction in corrections.CORRECTIONS:
    result = _targets(correction, target=MU)
    np.testing.assert_allclose(result.vs.numpy()[:, 0], [4.42, 3.8],
                               rtol=1e-5, err_msg=correction)
    np.testing.assert_allclose(result.pg_advantages.numpy()[:, 0],
                               [3.92, 2.8], rtol=1e-5, err_msg=correction)


def test_no_gradient_flows_through_the_targets():
  target = tf.Variable(tf.constant(PI, tf.float32))
  values = tf.Variable(tf.constant(VALUES))
  for correction in corrections.CORRECTIONS:
    with tf.GradientTape() as tape:
      result = corrections.targets(
          correction, tf.constant(MU, tf.float32), target,
          tf.constant(ACTIONS), tf.constant(DISCOUNTS), tf.constant(REWARDS),
          values, tf.constant(BOOTSTRAP))
      total = tf.reduce_sum(result.vs) + tf.reduce_sum(result.pg_advantages)
    assert tape.gradient(total, [target, values]) == [None, None]


def test_the_epsilon_correction_adds_epsilon_inside_the_log():
  logits = tf.constant([[[0.0, -30.0]]])  # π(a=1) ≈ 9.4e-14.
  advantage = tf.constant([[1.0]])
  plain = losses.policy_gradient_loss(logits, tf.constant([[1]]), advantage)
  with_epsilon = losses.policy_gradient_loss(logits, tf.constant([[1]]),
                                             advantage, epsilon=1e-6)
  assert float(plain) == pytest.approx(30.0, rel=1e-5)  # −log π(a)
  assert float(with_epsilon) == pytest.approx(-math.log(1e-6 + 9.357623e-14),
                                              rel=1e-5)


def test_unknown_names_are_refused():
  with pytest.raises(ValueError, match="Unknown correction 'retrace'"):
    _targets("retrace")
  with pytest.raises(ValueError, match="Unknown pg_bootstrap"):
    _targets("vtrace", pg_bootstrap="q")
