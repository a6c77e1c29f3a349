"""V-trace against a direct evaluation of the paper's Eq. 1."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import vtrace


def _direct_vtrace(log_rhos, discounts, rewards, values, bootstrap_value,
                   rho_bar, pg_rho_bar, c_bar, lambda_):
  """Eq. 1 as a sum over t of discounted, trace-weighted TD errors."""
  num_steps, batch_size = log_rhos.shape
  rhos = np.exp(log_rhos)
  clip = lambda x, bar: x if bar is None else np.minimum(bar, x)
  values_ext = np.concatenate([values, bootstrap_value[None]], axis=0)
  vs = np.zeros_like(values)
  pg = np.zeros_like(values)
  for b in range(batch_size):
    for s in range(num_steps):
      total = values[s, b]
      for t in range(s, num_steps):
        weight = 1.0
        for i in range(s, t):  # Π_{i=s}^{t-1} γ_i c_i; empty product is 1.
          weight *= discounts[i, b] * lambda_ * clip(rhos[i, b], c_bar)
        delta = clip(rhos[t, b], rho_bar) * (
            rewards[t, b] + discounts[t, b] * values_ext[t + 1, b]
            - values[t, b])
        total += weight * delta
      vs[s, b] = total
  vs_ext = np.concatenate([vs, bootstrap_value[None]], axis=0)
  for b in range(batch_size):
    for s in range(num_steps):
      pg[s, b] = clip(rhos[s, b], pg_rho_bar) * (
          rewards[s, b] + discounts[s, b] * vs_ext[s + 1, b] - values[s, b])
  return vs, pg


def _random_inputs(rng, num_steps, batch_size):
  return dict(
      log_rhos=rng.normal(0.0, 1.0, (num_steps, batch_size)).astype(np.float32),
      # Some zero discounts put episode ends inside the unroll.
      discounts=(0.9 * (rng.uniform(size=(num_steps, batch_size)) > 0.15)
                 ).astype(np.float32),
      rewards=rng.normal(0.0, 1.0, (num_steps, batch_size)).astype(np.float32),
      values=rng.normal(0.0, 1.0, (num_steps, batch_size)).astype(np.float32),
      bootstrap_value=rng.normal(0.0, 1.0, (batch_size,)).astype(np.float32))


@pytest.mark.parametrize("num_steps", [1, 5, 20])
@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize("rho_bar,pg_rho_bar,c_bar,lambda_", [
    (1.0, 1.0, 1.0, 1.0),
    (2.0, 1.5, 0.8, 0.9),
    (None, None, None, 1.0),
    (3.7, None, 1.0, 0.5),
])
def test_matches_direct_evaluation_of_eq1(num_steps, batch_size, rho_bar,
                                          pg_rho_bar, c_bar, lambda_):
  rng = np.random.default_rng(num_steps * 10 + batch_size)
  inputs = _random_inputs(rng, num_steps, batch_size)
  got = vtrace.from_importance_weights(
      **inputs, clip_rho_threshold=rho_bar, clip_pg_rho_threshold=pg_rho_bar,
      clip_c_threshold=c_bar, lambda_=lambda_)
  want_vs, want_pg = _direct_vtrace(
      **inputs, rho_bar=rho_bar, pg_rho_bar=pg_rho_bar, c_bar=c_bar,
      lambda_=lambda_)
  np.testing.assert_allclose(got.vs.numpy(), want_vs, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got.pg_advantages.numpy(), want_pg, rtol=1e-5,
                             atol=1e-5)


def test_on_policy_reduces_to_n_step_return():
  num_steps, batch_size, gamma = 6, 3, 0.9
  rng = np.random.default_rng(1)
  rewards = rng.normal(size=(num_steps, batch_size)).astype(np.float32)
  values = rng.normal(size=(num_steps, batch_size)).astype(np.float32)
  bootstrap = rng.normal(size=(batch_size,)).astype(np.float32)
  got = vtrace.from_importance_weights(
      log_rhos=np.zeros((num_steps, batch_size), np.float32),
      discounts=np.full((num_steps, batch_size), gamma, np.float32),
      rewards=rewards, values=values, bootstrap_value=bootstrap)
  for s in range(num_steps):
    n = num_steps - s
    n_step = sum(gamma**k * rewards[s + k] for k in range(n)) + (
        gamma**n * bootstrap)
    np.testing.assert_allclose(got.vs[s].numpy(), n_step, rtol=1e-5, atol=1e-5)


def test_zero_discount_cuts_the_trace_into_independent_pieces():
  rng = np.random.default_rng(2)
  inputs = _random_inputs(rng, 10, 4)
  inputs["discounts"] = np.full((10, 4), 0.95, np.float32)
  cut = 6
  inputs["discounts"][cut - 1] = 0.0  # Episode ends between step 5 and 6.
  whole = vtrace.from_importance_weights(**inputs)
  first = vtrace.from_importance_weights(
      log_rhos=inputs["log_rhos"][:cut], discounts=inputs["discounts"][:cut],
      rewards=inputs["rewards"][:cut], values=inputs["values"][:cut],
      # Any bootstrap: it is multiplied by the zero discount.
      bootstrap_value=np.full((4,), 1e6, np.float32))
  second = vtrace.from_importance_weights(
      log_rhos=inputs["log_rhos"][cut:], discounts=inputs["discounts"][cut:],
      rewards=inputs["rewards"][cut:], values=inputs["values"][cut:],
      bootstrap_value=inputs["bootstrap_value"])
  np.testing.assert_allclose(
      whole.vs.numpy(), np.concatenate([first.vs, second.vs]), rtol=1e-6)
  np.testing.assert_allclose(
      whole.pg_advantages.numpy(),
      np.concatenate([first.pg_advantages, second.pg_advantages]), rtol=1e-6)


def test_no_gradient_flows_through_targets():
  rng = np.random.default_rng(3)
  inputs = {k: tf.Variable(v) for k, v in _random_inputs(rng, 5, 2).items()}
  with tf.GradientTape(persistent=True) as tape:
    out = vtrace.from_importance_weights(**inputs)
    vs_sum = tf.reduce_sum(out.vs)
    pg_sum = tf.reduce_sum(out.pg_advantages)
  for name, var in inputs.items():
    assert tape.gradient(vs_sum, var) is None, name
    assert tape.gradient(pg_sum, var) is None, name


def test_from_logits_computes_log_rhos_and_matches_importance_weights():
  rng = np.random.default_rng(4)
  num_steps, batch_size, num_actions = 7, 3, 4
  behaviour = rng.normal(size=(num_steps, batch_size, num_actions))
  target = rng.normal(size=(num_steps, batch_size, num_actions))
  actions = rng.integers(0, num_actions, (num_steps, batch_size))
  inputs = _random_inputs(rng, num_steps, batch_size)
  del inputs["log_rhos"]
  out = vtrace.from_logits(behaviour, target, actions, **inputs)

  def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))
  idx = np.ix_(range(num_steps), range(batch_size))
  want_target = log_softmax(target)[idx + (actions,)]
  want_behaviour = log_softmax(behaviour)[idx + (actions,)]
  np.testing.assert_allclose(out.target_action_log_probs, want_target,
                             rtol=1e-5)
  np.testing.assert_allclose(out.behaviour_action_log_probs, want_behaviour,
                             rtol=1e-5)
  np.testing.assert_allclose(out.log_rhos, want_target - want_behaviour,
                             rtol=1e-5, atol=1e-6)
  ref = vtrace.from_importance_weights(
      log_rhos=want_target - want_behaviour, **inputs)
  np.testing.assert_allclose(out.vs, ref.vs, rtol=1e-5)


def test_works_inside_tf_function_with_dynamic_length():
  spec = tf.TensorSpec([None, None], tf.float32)

  @tf.function(input_signature=[spec] * 4 + [tf.TensorSpec([None])])
  def compiled(log_rhos, discounts, rewards, values, bootstrap_value):
    return vtrace.from_importance_weights(
        log_rhos, discounts, rewards, values, bootstrap_value).vs

  rng = np.random.default_rng(5)
  for num_steps in (3, 11):
    inputs = _random_inputs(rng, num_steps, 2)
    eager = vtrace.from_importance_weights(**inputs).vs
    np.testing.assert_allclose(compiled(**inputs), eager, rtol=1e-6)


@pytest.mark.parametrize("bad,message", [
    (dict(values=np.zeros((5,), np.float32)), "`values` must have rank 2"),
    (dict(rewards=np.zeros((4, 2), np.float32)), "`rewards` has shape"),
    (dict(bootstrap_value=np.zeros((3,), np.float32)), "`bootstrap_value`"),
    (dict(lambda_=1.5), "lambda_"),
])
def test_bad_shapes_name_the_argument(bad, message):
  inputs = _random_inputs(np.random.default_rng(6), 5, 2)
  inputs.update(bad)
  with pytest.raises(ValueError, match=message):
    vtrace.from_importance_weights(**inputs)


@pytest.mark.parametrize("shapes", [
    # The paper's vtrace_test.py: one importance weight and discount per
    # step against 42 value heads.
    dict(log_rhos=(1,), discounts=(1,), rewards=(42,), values=(42,),
         bootstrap_value=(42,)),
    # Three policies' weights, one reward and one value (its bootstrap
    # broadcast too).
    dict(log_rhos=(3,), discounts=(1,), rewards=(1,), values=(1,),
         bootstrap_value=(1,)),
])
def test_trailing_dimensions_equal_separate_calls(shapes):
  rng = np.random.default_rng(8)
  num_steps, batch_size = 7, 3
  inputs = {}
  for name, trailing in shapes.items():
    lead = (batch_size,) if name == "bootstrap_value" else (num_steps,
                                                            batch_size)
    inputs[name] = rng.normal(0.0, 1.0, lead + trailing).astype(np.float32)
  inputs["discounts"] = (0.9 * (rng.uniform(size=inputs["discounts"].shape)
                                > 0.15)).astype(np.float32)
  kwargs = dict(clip_rho_threshold=1.5, clip_pg_rho_threshold=1.2,
                clip_c_threshold=0.9, lambda_=0.8)
  result = vtrace.from_importance_weights(**inputs, **kwargs)
  heads = max(trailing[0] for trailing in shapes.values())
  assert result.vs.shape == (num_steps, batch_size, heads)
  assert result.pg_advantages.shape == (num_steps, batch_size, heads)
  for k in range(heads):
    one = vtrace.from_importance_weights(
        **{name: x[..., min(k, x.shape[-1] - 1)]
           for name, x in inputs.items()}, **kwargs)
    np.testing.assert_allclose(result.vs[..., k], one.vs, rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(result.pg_advantages[..., k],
                               one.pg_advantages, rtol=1e-6, atol=1e-6)


def test_trailing_dimensions_inside_tf_function_with_dynamic_shapes():
  spec = tf.TensorSpec([None, None, None], tf.float32)

  @tf.function(input_signature=[spec] * 4 + [
      tf.TensorSpec([None, None], tf.float32)])
  def compiled(log_rhos, discounts, rewards, values, bootstrap_value):
    return vtrace.from_importance_weights(
        log_rhos, discounts, rewards, values, bootstrap_value).vs

  rng = np.random.default_rng(9)
  inputs = {name: rng.normal(size=(5, 2, 1 if name in ("log_rhos",
                                                       "discounts") else 4)
                             ).astype(np.float32)
            for name in ("log_rhos", "discounts", "rewards", "values")}
  inputs["bootstrap_value"] = rng.normal(size=(2, 4)).astype(np.float32)
  np.testing.assert_allclose(compiled(**inputs),
                             vtrace.from_importance_weights(**inputs).vs,
                             rtol=1e-6)


@pytest.mark.parametrize("bad,message", [
    (dict(values=np.zeros((5, 2), np.float32)), "`values` must have rank 3"),
    (dict(bootstrap_value=np.zeros((2,), np.float32)),
     "`bootstrap_value` must have rank 2"),
    (dict(rewards=np.zeros((5, 2, 3), np.float32)), "do not broadcast"),
    (dict(values=np.zeros((6, 2, 4), np.float32)), "`values` has shape"),
])
def test_bad_trailing_dimensions_name_the_argument(bad, message):
  inputs = dict(log_rhos=np.zeros((5, 2, 1), np.float32),
                discounts=np.zeros((5, 2, 1), np.float32),
                rewards=np.zeros((5, 2, 4), np.float32),
                values=np.zeros((5, 2, 4), np.float32),
                bootstrap_value=np.zeros((2, 4), np.float32))
  inputs.update(bad)
  with pytest.raises(ValueError, match=message):
    vtrace.from_importance_weights(**inputs)
