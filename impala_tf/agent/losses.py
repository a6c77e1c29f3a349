"""The three IMPALA losses and the reward transforms (Sec. 4.2, App. D).

The total loss is

  L = pg_loss + baseline_cost · baseline_loss + entropy_cost · entropy_loss

where, over all time steps and batch entries (shapes `[T, B]`):

  pg_loss       = Σ −log π(a_t|x_t) · A_t        (A_t: V-trace advantage, constant)
  baseline_loss = Σ ½ (v_t − V(x_t))²             (v_t: V-trace target, constant)
  entropy_loss  = Σ −H(π(·|x_t))                  (minimising it raises entropy)

The paper sums over batch and time (App. D.1); `reduction="mean"` averages
instead.
"""

from typing import Optional

import tensorflow as tf
import tensorflow_probability as tfp

from impala_tf.config import presets

REDUCTIONS = presets.LOSS_REDUCTIONS
REWARD_CLIPPING_MODES = presets.REWARD_CLIPPING_MODES


def _reduce(x: tf.Tensor, reduction: str,
            groups: Optional[int] = None) -> tf.Tensor:
  """`x` `[T, B]` summed or averaged; with `groups`, separately for each of
  `groups` agents whose trajectories alternate along B (agent `b % groups`
  owns column b: `impala_tf.anakin.vectorised`), giving `[groups]`."""
  if groups is not None:
    x = tf.reshape(x, [-1, groups])
    if reduction == "sum":
      return tf.reduce_sum(x, axis=0)
    if reduction == "mean":
      return tf.reduce_mean(x, axis=0)
  elif reduction == "sum":
    return tf.reduce_sum(x)
  elif reduction == "mean":
    return tf.reduce_mean(x)
  raise ValueError(
      f"Unknown loss reduction {reduction!r}; expected one of {REDUCTIONS}.")


def policy_gradient_loss(policy_logits, actions, advantages,
                         reduction: str = "sum",
                         epsilon: float = 0.0,
                         groups: Optional[int] = None) -> tf.Tensor:
  """−Σ log π(a_t|x_t) · A_t for logits `[T, B, A]`, actions and advantages
  `[T, B]`. The advantages are treated as constants. With `epsilon` > 0 the
  log is of π(a_t|x_t) + ε (Sec. 5.2.2's ε-correction)."""
  log_prob = tfp.distributions.Categorical(logits=policy_logits).log_prob(
      actions)
  if epsilon:
    log_prob = tf.math.log(tf.exp(log_prob) + epsilon)
  return _reduce(-log_prob * tf.stop_gradient(advantages), reduction, groups)


def clipped_surrogate_loss(policy_logits, anchor_logits, actions, advantages,
                           clip: float, reduction: str = "sum",
                           groups: Optional[int] = None) -> tf.Tensor:
  """PPO's clipped surrogate, −Σ min(r_t A_t, clip(r_t, 1−ε, 1+ε) A_t),
  with r_t = π(a_t|x_t) / π_anchor(a_t|x_t), for logits `[T, B, A]`
  (`anchor_logits` and the advantages are constants), actions and
  advantages `[T, B]`, ε = `clip`.

  Where π equals π_anchor (r = 1) its gradient is the policy gradient's,
  −Σ A_t ∇log π(a_t|x_t); where r has left [1−ε, 1+ε] in the direction
  A_t favours, that term's gradient is 0.
  """
  distribution = tfp.distributions.Categorical(logits=policy_logits)
  anchor = tfp.distributions.Categorical(
      logits=tf.stop_gradient(anchor_logits))
  ratio = tf.exp(distribution.log_prob(actions) - anchor.log_prob(actions))
  advantages = tf.stop_gradient(advantages)
  surrogate = tf.minimum(
      ratio * advantages,
      tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip) * advantages)
  return _reduce(-surrogate, reduction, groups)


def normalize_advantages(advantages, epsilon: float = 1e-8) -> tf.Tensor:
  """`advantages` less their mean, over their standard deviation (plus
  `epsilon`), over every element: PPO's implementations' scaling, which
  makes the policy gradient's size independent of the rewards' scale."""
  mean, variance = tf.nn.moments(advantages, axes=list(range(
      advantages.shape.rank)))
  return (advantages - mean) / (tf.sqrt(variance) + epsilon)


def baseline_loss(advantages, reduction: str = "sum",
                  groups: Optional[int] = None) -> tf.Tensor:
  """½ Σ (v_t − V(x_t))² given `advantages = v_t − V(x_t)` `[T, B]`."""
  return _reduce(0.5 * tf.square(advantages), reduction, groups)


def entropy_loss(policy_logits, reduction: str = "sum",
                 groups: Optional[int] = None) -> tf.Tensor:
  """−Σ H(π(·|x_t)) for logits `[T, B, A]`."""
  entropy = tfp.distributions.Categorical(logits=policy_logits).entropy()
  return _reduce(-entropy, reduction, groups)


def clip_rewards(rewards, mode: str) -> tf.Tensor:
  """Applies a reward transform before the V-trace targets.

  Modes:
    abs_one: clip to [-1, 1] (Atari, single DMLab tasks; Tables D.3, G.1).
    soft_asymmetric: the paper's "optimistic asymmetric clipping" for
      DMLab-30 (Fig. D.1): 0.3 · min(tanh r, 0) + 5 · max(tanh r, 0), range
      (−0.3, 5).
    scalable_agent_soft_asymmetric: what the paper's released code computes
      under the name soft_asymmetric instead: 5 · tanh(r / 5) for r ≥ 0 and
      1.5 · tanh(r / 5) for r < 0. It differs from the paper's formula; offered
      to reproduce runs of that code.
    none: rewards unchanged.
  """
  rewards = tf.convert_to_tensor(rewards, tf.float32)
  if mode == "abs_one":
    return tf.clip_by_value(rewards, -1.0, 1.0)
  if mode == "soft_asymmetric":
    squashed = tf.tanh(rewards)
    return 0.3 * tf.minimum(squashed, 0.0) + 5.0 * tf.maximum(squashed, 0.0)
  if mode == "scalable_agent_soft_asymmetric":
    squashed = tf.tanh(rewards / 5.0)
    return tf.where(rewards < 0, 0.3 * squashed, squashed) * 5.0
  if mode == "none":
    return rewards
  raise ValueError(f"Unknown reward clipping mode {mode!r}; expected one of "
                   f"{REWARD_CLIPPING_MODES}.")
