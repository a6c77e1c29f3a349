"""V-trace off-policy targets (Espeholt et al., 2018, Sec. 4 and App. A).

All tensors are time-major. `T` is the number of steps in an unroll and `B` the
number of unrolls in the batch. Index `t` of every `[T, B]` argument refers to
the transition from state x_t, where action a_t was taken, to x_{t+1}:

  log_rhos[t]  = log π(a_t|x_t) − log μ(a_t|x_t)
  discounts[t] = γ · (1 − done_{t+1}): zero where x_{t+1} starts a new episode,
                 which cuts both the bootstrap and the trace there
  rewards[t]   = r_t, the reward of that transition
  values[t]    = V(x_t)
  bootstrap_value[b] = V(x_T), the value after the last transition.

With ρ_t = min(ρ̄, π/μ) and c_t = λ · min(c̄, π/μ) (Remark 2), the targets are
(Remark 1, run backward from v_T = V(x_T)):

  δ_t = ρ_t (r_t + γ_t V(x_{t+1}) − V(x_t))
  v_t = V(x_t) + δ_t + γ_t c_t (v_{t+1} − V(x_{t+1}))

and the policy-gradient advantage is ρ^pg_t (r_t + γ_t v_{t+1} − V(x_t)), with
its own truncation level ρ̄_pg. A threshold of `None` means no truncation.

`from_importance_weights` also takes `[T, B, ...]` arguments with trailing
dimensions, all of the same rank as `log_rhos` (`bootstrap_value` one less),
which broadcast against each other after `[T, B]`: importance weights
`[T, B, 1]` against values `[T, B, K]` give K value heads sharing one
trace, as the paper's code allows (its `vtrace_test.py` feeds `[T, B, 1]`
weights against `[T, B, 42]` values). Each of the K is the `[T, B]`
computation on its own.

Every output is a constant for the optimiser (the paper's code stops the
gradient of both): the inputs are wrapped in `stop_gradient`, so no gradient
reaches the values through the targets.
"""

import collections
import functools
from typing import Optional

import tensorflow as tf

VTraceReturns = collections.namedtuple("VTraceReturns", ["vs", "pg_advantages"])

VTraceFromLogitsReturns = collections.namedtuple(
    "VTraceFromLogitsReturns",
    ["vs", "pg_advantages", "log_rhos", "behaviour_action_log_probs",
     "target_action_log_probs"])


def _check_rank(name: str, tensor: tf.Tensor, rank: int, meaning: str):
  if tensor.shape.rank is not None and tensor.shape.rank != rank:
    raise ValueError(
        f"V-trace argument `{name}` must have rank {rank} ({meaning}), got "
        f"shape {tensor.shape}.")


def _check_same_shape(name: str, shape: tf.TensorShape, ref_name: str,
                      ref_shape: tf.TensorShape, lead: int = 2):
  """The first `lead` dimensions ([T, B], or [B]) equal `ref_shape`'s, the
  trailing ones broadcast with its."""
  fits = shape.rank is None or ref_shape.rank is None or (
      shape[:lead].is_compatible_with(ref_shape[:lead]) and all(
          a is None or b is None or a == b or 1 in (a, b)
          for a, b in zip(shape[lead:].as_list(),
                          ref_shape[lead:].as_list())))
  if not fits:
    what = "[T, B, ...]" if lead == 2 else "[B, ...]"
    raise ValueError(
        f"V-trace argument `{name}` has shape {shape}, which does not "
        f"match `{ref_name}` with shape {ref_shape}; both must be {what} "
        "with the same T and B and trailing dimensions that broadcast.")


def _truncate(ratio: tf.Tensor, threshold: Optional[float]) -> tf.Tensor:
  if threshold is None:
    return ratio
  return tf.minimum(tf.cast(threshold, ratio.dtype), ratio)


def action_log_probs(policy_logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
  """log π(a|x) for logits `[T, B, A]` and int actions `[T, B]` → `[T, B]`."""
  return -tf.nn.sparse_softmax_cross_entropy_with_logits(
      logits=policy_logits, labels=actions)


def from_importance_weights(
    log_rhos, discounts, rewards, values, bootstrap_value,
    clip_rho_threshold: Optional[float] = 1.0,
    clip_pg_rho_threshold: Optional[float] = 1.0,
    clip_c_threshold: Optional[float] = 1.0,
    lambda_: float = 1.0) -> VTraceReturns:
  """V-trace targets from log importance weights.

  Shapes are written for `[T, B]`; every argument may carry the same
  trailing dimensions `[T, B, ...]` (`bootstrap_value` `[B, ...]`), sizes
  1 broadcasting (module docstring).

  Args:
    log_rhos: float `[T, B]`, log π(a_t|x_t) − log μ(a_t|x_t).
    discounts: float `[T, B]`, γ_t; zero where the episode ended.
    rewards: float `[T, B]`, r_t (already clipped if the run clips rewards).
    values: float `[T, B]`, V(x_t).
    bootstrap_value: float `[B]`, V(x_T).
    clip_rho_threshold: ρ̄ for the value targets, or None.
    clip_pg_rho_threshold: ρ̄ for the policy-gradient advantages, or None.
    clip_c_threshold: c̄ for the traces, or None.
    lambda_: λ of Remark 2, multiplies every c_t.

  Returns:
    `VTraceReturns(vs, pg_advantages)`, both float `[T, B]` (with trailing
    dimensions: the broadcast shape of the arguments), gradients stopped.

  Raises:
    ValueError: an argument has the wrong rank or a shape that disagrees with
      `log_rhos`.
  """
  log_rhos = tf.convert_to_tensor(log_rhos, dtype=tf.float32)
  discounts = tf.convert_to_tensor(discounts, dtype=tf.float32)
  rewards = tf.convert_to_tensor(rewards, dtype=tf.float32)
  values = tf.convert_to_tensor(values, dtype=tf.float32)
  bootstrap_value = tf.convert_to_tensor(bootstrap_value, dtype=tf.float32)

  rank = log_rhos.shape.rank
  if rank is not None and rank < 2:
    _check_rank("log_rhos", log_rhos, 2, "[T, B]")
  if rank is not None:
    meaning = "[T, B]" if rank == 2 else "[T, B, ...], the rank of `log_rhos`"
    for name, tensor in (("discounts", discounts), ("rewards", rewards),
                         ("values", values)):
      _check_rank(name, tensor, rank, meaning)
    _check_rank("bootstrap_value", bootstrap_value, rank - 1,
                "[B]" if rank == 2 else "[B, ...], one less than `log_rhos`")
  for name, tensor in (("discounts", discounts), ("rewards", rewards),
                       ("values", values)):
    _check_same_shape(name, tensor.shape, "log_rhos", log_rhos.shape)
  if rank is not None:
    _check_same_shape("bootstrap_value", bootstrap_value.shape,
                      "log_rhos without its time dimension",
                      log_rhos.shape[1:], lead=1)
  if rank != 2:
    # Trailing dimensions: every argument to their common shape, so the
    # recursion below reads as for [T, B].
    time_major = (log_rhos, discounts, rewards, values)
    names = ("log_rhos", "discounts", "rewards", "values", "bootstrap_value")
    try:
      functools.reduce(tf.broadcast_static_shape,
                       [x.shape for x in time_major] +
                       [tf.TensorShape([None]).concatenate(
                           bootstrap_value.shape)])
    except ValueError:
      raise ValueError(
          "V-trace arguments' trailing dimensions do not broadcast "
          "together: " + ", ".join(
              f"`{n}` {x.shape}" for n, x in
              zip(names, time_major + (bootstrap_value,))) + ".") from None
    shape = functools.reduce(tf.broadcast_dynamic_shape,
                             [tf.shape(x) for x in time_major])
    shape = tf.concat([shape[:1], tf.broadcast_dynamic_shape(
        shape[1:], tf.shape(bootstrap_value))], 0)
    log_rhos, discounts, rewards, values = (
        tf.broadcast_to(x, shape) for x in time_major)
    bootstrap_value = tf.broadcast_to(bootstrap_value, shape[1:])
  if not 0.0 <= lambda_ <= 1.0:
    raise ValueError(f"V-trace `lambda_` must be in [0, 1], got {lambda_}.")

  # Targets are constants for the optimiser; stopping the gradient at the
  # inputs also keeps the backward scan out of the graph.
  log_rhos, discounts, rewards, values, bootstrap_value = (
      tf.stop_gradient(x) for x in
      (log_rhos, discounts, rewards, values, bootstrap_value))

  rhos = tf.exp(log_rhos)
  clipped_rhos = _truncate(rhos, clip_rho_threshold)
  cs = lambda_ * _truncate(rhos, clip_c_threshold)

  values_tp1 = tf.concat([values[1:], bootstrap_value[tf.newaxis]], axis=0)
  deltas = clipped_rhos * (rewards + discounts * values_tp1 - values)

  # acc_t = δ_t + γ_t c_t acc_{t+1}, acc_T = 0; then v_t = V(x_t) + acc_t.
  def backward(acc, elems):
    delta_t, discount_t, c_t = elems
    return delta_t + discount_t * c_t * acc

  vs_minus_values = tf.scan(
      backward, (deltas, discounts, cs),
      initializer=tf.zeros_like(bootstrap_value), reverse=True)
  vs = vs_minus_values + values

  vs_tp1 = tf.concat([vs[1:], bootstrap_value[tf.newaxis]], axis=0)
  pg_rhos = _truncate(rhos, clip_pg_rho_threshold)
  pg_advantages = pg_rhos * (rewards + discounts * vs_tp1 - values)
  return VTraceReturns(vs=tf.stop_gradient(vs),
                       pg_advantages=tf.stop_gradient(pg_advantages))


def from_logits(
    behaviour_policy_logits, target_policy_logits, actions, discounts,
    rewards, values, bootstrap_value,
    clip_rho_threshold: Optional[float] = 1.0,
    clip_pg_rho_threshold: Optional[float] = 1.0,
    clip_c_threshold: Optional[float] = 1.0,
    lambda_: float = 1.0) -> VTraceFromLogitsReturns:
  """V-trace targets from the behaviour (μ) and target (π) policies' logits.

  Args:
    behaviour_policy_logits: float `[T, B, A]`, the actor's logits.
    target_policy_logits: float `[T, B, A]`, the learner's logits.
    actions: int `[T, B]`, the actions the actor took.
    discounts, rewards, values, bootstrap_value, thresholds, lambda_: as in
      `from_importance_weights`.

  Returns:
    `VTraceFromLogitsReturns` with `vs` and `pg_advantages` (`[T, B]`,
    gradients stopped), `log_rhos`, `behaviour_action_log_probs` and
    `target_action_log_probs` (`[T, B]`; the last one keeps its gradient).
  """
  behaviour_policy_logits = tf.convert_to_tensor(
      behaviour_policy_logits, dtype=tf.float32)
  target_policy_logits = tf.convert_to_tensor(
      target_policy_logits, dtype=tf.float32)
  actions = tf.convert_to_tensor(actions, dtype=tf.int32)
  _check_rank("behaviour_policy_logits", behaviour_policy_logits, 3,
              "[T, B, A]")
  _check_rank("target_policy_logits", target_policy_logits, 3, "[T, B, A]")
  _check_rank("actions", actions, 2, "[T, B]")
  if not behaviour_policy_logits.shape.is_compatible_with(
      target_policy_logits.shape):
    raise ValueError(
        "V-trace arguments `behaviour_policy_logits` "
        f"{behaviour_policy_logits.shape} and `target_policy_logits` "
        f"{target_policy_logits.shape} must have the same shape [T, B, A].")
  if not actions.shape.is_compatible_with(target_policy_logits.shape[:2]):
    raise ValueError(
        f"V-trace argument `actions` has shape {actions.shape}, which does "
        f"not match the logits {target_policy_logits.shape}; it must be "
        "[T, B].")

  target_action_log_probs = action_log_probs(target_policy_logits, actions)
  behaviour_action_log_probs = action_log_probs(behaviour_policy_logits,
                                                actions)
  log_rhos = target_action_log_probs - behaviour_action_log_probs
  returns = from_importance_weights(
      log_rhos=log_rhos, discounts=discounts, rewards=rewards, values=values,
      bootstrap_value=bootstrap_value,
      clip_rho_threshold=clip_rho_threshold,
      clip_pg_rho_threshold=clip_pg_rho_threshold,
      clip_c_threshold=clip_c_threshold, lambda_=lambda_)
  return VTraceFromLogitsReturns(
      vs=returns.vs, pg_advantages=returns.pg_advantages, log_rhos=log_rhos,
      behaviour_action_log_probs=behaviour_action_log_probs,
      target_action_log_probs=target_action_log_probs)
