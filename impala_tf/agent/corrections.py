"""The off-policy corrections the paper compares (Sec. 5.2.2), as one function.

All tensors are time-major, as in `vtrace.py`: `T` steps of `B` unrolls;
index `t` of a `[T, B]` tensor is the transition from x_t (where a_t was
taken) to x_{t+1}. μ is the behaviour policy (the actor's logits), π the
target policy (the learner's), V the learned value, ρ_t = min(ρ̄, π(a_t|x_t) /
μ(a_t|x_t)).

`targets` returns, for the learner's losses, the value targets v_t, the
policy-gradient advantages A_t and the ε inside the policy-gradient
log-probability:

  correction    value target v_t                 advantage A_t                   log-prob
  ------------  -------------------------------  ------------------------------  -------------
  vtrace        V-trace (Sec. 4)                 ρ_t (r_t + γ v_{t+1} − V(x_t))  log π(a_t)
  one_step_is   n-step return (V-trace with all  ρ_t (r_t + γ v_{t+1} − V(x_t))  log π(a_t)
                ρ = 1, c = λ: not corrected)
  epsilon       n-step return                    r_t + γ v_{t+1} − V(x_t)        log(π(a_t) + ε)
  none          n-step return                    r_t + γ v_{t+1} − V(x_t)        log π(a_t)

with ε = 1e-6 (GA3C's ε-correction) and, for `one_step_is`, ρ̄ the
policy-gradient threshold (the paper uses the same ρ̄ = c̄ = 1 for both IS
methods), which follows the targets' ρ̄ unless given [paper Sec. 4: one ρ̄].

λ (Remark 2, c_t = λ · min(c̄, π/μ)) applies to every correction [ours;
the paper's Sec. 5.2.2 runs use no λ]: for the three that do not correct
the target, c_t = λ, and the target is the λ-return truncated at the
unroll's end, v_t = V(x_t) + Σ_{k≥t} (Π_{i=t}^{k−1} γ_i λ) δ_k with
δ_k = r_k + γ_k V(x_{k+1}) − V(x_k) (on-policy this is Remark 2's
TD(λ)). Applied rather than refused because it has that one meaning, keeps
a λ ablation comparable across corrections (only the correction changes),
and keeps the on-policy agreement below at any λ; λ = 1 is the n-step
return of Eq. 2.

On-policy data (π = μ, so every ratio is 1 and, with ρ̄ ≥ 1, every ρ_t is
1) gives all four the same targets and advantages, whatever λ; only
`epsilon`'s log-probability differs, by ε.

`pg_bootstrap="value"` is Appendix E.3's variant: the advantage bootstraps
from the value estimate, r_t + γ V(x_{t+1}), instead of from the target
v_{t+1} (which the paper found worse). Every output is a constant for the
optimiser (gradients stopped).
"""

from typing import NamedTuple, Optional, Union

import tensorflow as tf

from impala_tf.config import presets
from impala_tf.agent import vtrace

CORRECTIONS = presets.CORRECTIONS
PG_BOOTSTRAPS = presets.PG_BOOTSTRAPS
EPSILON = 1e-6  # Sec. 5.2.2: "a small value (ε = 1e-6)".
# clip_pg_rho_threshold's default: the targets' ρ̄ (presets.SAME_AS_RHO).
SAME_AS_RHO = presets.SAME_AS_RHO


class CorrectedTargets(NamedTuple):
  """What the losses need (see the module docstring).

  Attributes:
    vs: float `[T, B]`, the value targets v_t.
    pg_advantages: float `[T, B]`, the advantages A_t, IS weight included.
    log_rhos: float `[T, B]`, log π(a_t|x_t) − log μ(a_t|x_t) (for logs;
      whatever the correction).
    log_prob_epsilon: the ε added to π(a_t) inside the policy gradient's
      log (0 except for `epsilon`).
  """
  vs: tf.Tensor
  pg_advantages: tf.Tensor
  log_rhos: tf.Tensor
  log_prob_epsilon: float


def _truncate(ratio, threshold: Optional[float]):
  return ratio if threshold is None else tf.minimum(threshold, ratio)


def targets(correction: str, behaviour_policy_logits, target_policy_logits,
            actions, discounts, rewards, values, bootstrap_value, *,
            clip_rho_threshold: Optional[float] = 1.0,
            clip_pg_rho_threshold: Union[float, str, None] = SAME_AS_RHO,
            clip_c_threshold: Optional[float] = 1.0, lambda_: float = 1.0,
            pg_bootstrap: str = "vs") -> CorrectedTargets:
  """The value targets and policy-gradient advantages of `correction`.

  Args:
    correction: one of `CORRECTIONS` (see the module docstring).
    behaviour_policy_logits: float `[T, B, A]`, μ's logits (the actor's).
    target_policy_logits: float `[T, B, A]`, π's logits (the learner's).
    actions: int `[T, B]`, a_t.
    discounts: float `[T, B]`, γ_t; zero where x_{t+1} starts an episode.
    rewards: float `[T, B]`, r_t (clipped as the run clips).
    values: float `[T, B]`, V(x_t).
    bootstrap_value: float `[B]`, V(x_T).
    clip_rho_threshold, clip_c_threshold: V-trace's ρ̄ and c̄ (used by
      `vtrace` only).
    lambda_: λ of Remark 2, for every correction (module docstring).
    clip_pg_rho_threshold: ρ̄ of the advantages' IS weight (`vtrace` and
      `one_step_is`); `SAME_AS_RHO` (default): `clip_rho_threshold`; None:
      no truncation.
    pg_bootstrap: "vs" (Sec. 4: r_t + γ v_{t+1}) or "value" (App. E.3:
      r_t + γ V(x_{t+1})).
  """
  if correction not in CORRECTIONS:
    raise ValueError(f"Unknown correction {correction!r}; expected one of "
                     f"{CORRECTIONS}.")
  if pg_bootstrap not in PG_BOOTSTRAPS:
    raise ValueError(f"Unknown pg_bootstrap {pg_bootstrap!r}; expected one "
                     f"of {PG_BOOTSTRAPS}.")
  if clip_pg_rho_threshold == SAME_AS_RHO:
    # One ρ̄ unless asked otherwise (Sec. 4), as presets.Config resolves it:
    # a fixed 1.0 here would give a caller of this function with ρ̄ = 10
    # two ρ̄s without saying so.
    clip_pg_rho_threshold = clip_rho_threshold
  if correction == "vtrace":
    returns = vtrace.from_logits(
        behaviour_policy_logits, target_policy_logits, actions, discounts,
        rewards, values, bootstrap_value,
        clip_rho_threshold=clip_rho_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold,
        clip_c_threshold=clip_c_threshold, lambda_=lambda_)
    vs, log_rhos = returns.vs, returns.log_rhos
  else:
    log_rhos = (vtrace.action_log_probs(target_policy_logits, actions) -
                vtrace.action_log_probs(behaviour_policy_logits, actions))
    # Not corrected: V-trace with every ρ and c equal to 1 is the n-step
    # bootstrapped return (Sec. 4, Eq. 2); with λ, c = λ and it is the
    # λ-return (module docstring).
    vs = vtrace.from_importance_weights(
        tf.zeros_like(log_rhos), discounts, rewards, values, bootstrap_value,
        clip_rho_threshold=None, clip_pg_rho_threshold=None,
        clip_c_threshold=None, lambda_=lambda_).vs
  if correction in ("vtrace", "one_step_is"):
    weights = _truncate(tf.exp(log_rhos), clip_pg_rho_threshold)
  else:
    weights = tf.ones_like(log_rhos)
  values = tf.convert_to_tensor(values, tf.float32)
  bootstrap_value = tf.convert_to_tensor(bootstrap_value, tf.float32)
  if pg_bootstrap == "vs":
    next_values = tf.concat([vs[1:], bootstrap_value[tf.newaxis]], axis=0)
  else:
    next_values = tf.concat([values[1:], bootstrap_value[tf.newaxis]], axis=0)
  advantages = weights * (tf.convert_to_tensor(rewards, tf.float32) +
                          tf.convert_to_tensor(discounts, tf.float32) *
                          next_values - values)
  return CorrectedTargets(
      vs=tf.stop_gradient(vs), pg_advantages=tf.stop_gradient(advantages),
      log_rhos=tf.stop_gradient(log_rhos),
      log_prob_epsilon=EPSILON if correction == "epsilon" else 0.0)
