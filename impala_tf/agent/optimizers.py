"""RMSProp with the semantics of TF1's `tf.train.RMSPropOptimizer`.

The paper's runs used TF1's optimiser: the mean square starts at **ones** and
epsilon sits inside the square root,

  ms  ← ρ · ms + (1 − ρ) · g²
  mom ← μ · mom + lr · g / sqrt(ms + ε)
  θ   ← θ − mom

Sonnet 2 and Keras 3 start the mean square at zero, which with ε = 0.01 makes
the first updates up to ten times larger; `initial_mean_square=1.0` keeps the
paper's behaviour and 0.0 gives the modern one.

A sparse gradient (`tf.IndexedSlices`, the instruction embedding's: only the
rows of the words in the batch) updates only those rows, as TF1's sparse
apply (`ResourceSparseApplyRMSProp`) did in the paper's code: the mean
square, momentum and weights of every other row stay as they are. Made
dense, every untouched row's mean square would decay towards 0 at every
step (ρ · ms), and its next update would be larger for having been unused.
Repeated indices (a word twice in a batch) are summed first, as TF1's
`Optimizer.apply_gradients` does before its sparse apply.

Slots are created by `initialize` (call it under the distribution strategy's
scope before the first compiled step: slots created lazily inside a compiled
multi-replica step fail). `apply` runs in a replica context of
`snt.distribute.Replicator`, whose replica-local variables each replica
updates with the same all-reduced gradients.
"""

from typing import Optional, Sequence

import sonnet as snt
import tensorflow as tf


def _check_ready(name: str, slots: Optional[list], gradients) -> None:
  """Refuses an `apply` before `initialize`, or with another number of
  gradients than the variables initialised."""
  if slots is None:
    raise RuntimeError(f"{name}.initialize(variables) must be called before "
                       "apply().")
  if len(gradients) != len(slots):
    raise ValueError(f"Got {len(gradients)} gradients for {len(slots)} "
                     "initialised variables.")


class RMSProp(snt.Module):
  """TF1-style RMSProp (see the module docstring)."""

  def __init__(self, decay: float = 0.99, epsilon: float = 0.1,
               momentum: float = 0.0, initial_mean_square: float = 1.0,
               name: Optional[str] = None):
    super().__init__(name=name or "rmsprop")
    if not 0.0 <= decay < 1.0:
      raise ValueError(f"RMSProp decay must be in [0, 1), got {decay}.")
    if epsilon <= 0.0:
      raise ValueError(f"RMSProp epsilon must be positive, got {epsilon}.")
    if not 0.0 <= momentum < 1.0:
      raise ValueError(f"RMSProp momentum must be in [0, 1), got {momentum}.")
    self.decay = decay
    self.epsilon = epsilon
    self.momentum = momentum
    self.initial_mean_square = initial_mean_square
    self._mean_square: Optional[list] = None
    self._mom: Optional[list] = None

  def initialize(self, variables: Sequence[tf.Variable]):
    """Creates the slot variables for `variables`."""
    self._mean_square = [
        tf.Variable(tf.fill(v.shape, tf.cast(self.initial_mean_square,
                                             v.dtype)),
                    trainable=False, name="mean_square") for v in variables]
    self._mom = ([tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                              name="momentum") for v in variables]
                 if self.momentum else [None] * len(variables))

  def apply(self, gradients: Sequence[tf.Tensor],
            variables: Sequence[tf.Variable], learning_rate,
            epsilon=None):
    """One update of `variables` with `gradients` at `learning_rate`;
    `epsilon` (a number or a scalar tensor, e.g. a variable population-based
    training changes) replaces the constructor's ε when given."""
    _check_ready("RMSProp", self._mean_square, gradients)
    for g, v, ms, mom in zip(gradients, variables, self._mean_square,
                             self._mom):
      if g is None:
        continue
      lr = tf.cast(learning_rate, v.dtype)
      eps = self.epsilon if epsilon is None else tf.cast(epsilon, v.dtype)
      if isinstance(g, tf.IndexedSlices):
        self._apply_sparse(g, v, ms, mom, lr, eps)
        continue
      new_ms = self.decay * ms + (1.0 - self.decay) * tf.square(g)
      ms.assign(new_ms)
      step = lr * g * tf.math.rsqrt(new_ms + eps)
      if mom is not None:
        step = mom.assign(self.momentum * mom + step)
      v.assign_sub(step)

  def _apply_sparse(self, g: tf.IndexedSlices, v, ms, mom, lr, eps):
    """The update of the rows `g.indices` of `v` `[N, ...]` alone (module
    docstring); `g.values` is `[K, ...]` for K indices, repeats allowed."""
    rows, position = tf.unique(g.indices)
    grad = tf.math.unsorted_segment_sum(g.values, position, tf.size(rows))
    rows = rows[:, tf.newaxis]
    new_ms = (self.decay * tf.gather_nd(ms, rows) +
              (1.0 - self.decay) * tf.square(grad))
    # Whole-variable assigns of scattered tensors, not `scatter_update`:
    # the Replicator's replica-local (ON_READ) variables refuse scatter ops.
    # Rows outside `rows` are copied bit for bit.
    ms.assign(tf.tensor_scatter_nd_update(ms, rows, new_ms))
    step = lr * grad * tf.math.rsqrt(new_ms + eps)
    if mom is not None:
      step = self.momentum * tf.gather_nd(mom, rows) + step
      mom.assign(tf.tensor_scatter_nd_update(mom, rows, step))
    v.assign(tf.tensor_scatter_nd_sub(v, rows, step))


class Adam(snt.Module):
  """Adam (Kingma and Ba, 2015), not the paper's optimiser: an option of
  ours (`--optimizer=adam`) for the fast Atari setting, with the same
  `initialize`/`apply` as `RMSProp`.

    m ← β1 · m + (1 − β1) · g
    v ← β2 · v + (1 − β2) · g²
    θ ← θ − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)

  A sparse gradient is applied as the dense one it stands for (the
  standard Adam's behaviour: untouched rows' moments decay).
  """

  def __init__(self, beta1: float = 0.9, beta2: float = 0.999,
               epsilon: float = 1e-5, name: Optional[str] = None):
    super().__init__(name=name or "adam")
    for label, value in (("beta1", beta1), ("beta2", beta2)):
      if not 0.0 <= value < 1.0:
        raise ValueError(f"Adam {label} must be in [0, 1), got {value}.")
    if epsilon <= 0.0:
      raise ValueError(f"Adam epsilon must be positive, got {epsilon}.")
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self._m: Optional[list] = None
    self._v: Optional[list] = None
    self._step: Optional[tf.Variable] = None

  def initialize(self, variables: Sequence[tf.Variable]):
    """Creates the moment slots for `variables` and the step count."""
    self._m = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                           name="first_moment") for v in variables]
    self._v = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                           name="second_moment") for v in variables]
    self._step = tf.Variable(0.0, trainable=False, name="adam_step")

  def apply(self, gradients: Sequence[tf.Tensor],
            variables: Sequence[tf.Variable], learning_rate,
            epsilon=None):
    """One update, as `RMSProp.apply` (`epsilon` replaces the
    constructor's ε when given)."""
    _check_ready("Adam", self._m, gradients)
    step = self._step.assign_add(1.0)
    lr = tf.cast(learning_rate, tf.float32)
    eps = self.epsilon if epsilon is None else tf.cast(epsilon, tf.float32)
    # The bias corrections folded into the rate, as the paper's Algorithm 1
    # ends (ε then sits on the uncorrected root, a negligible difference).
    rate = (lr * tf.sqrt(1.0 - tf.pow(self.beta2, step)) /
            (1.0 - tf.pow(self.beta1, step)))
    for g, v, m, s in zip(gradients, variables, self._m, self._v):
      if g is None:
        continue
      g = tf.convert_to_tensor(g)  # A sparse gradient made dense.
      new_m = m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
      new_s = s.assign(self.beta2 * s + (1.0 - self.beta2) * tf.square(g))
      v.assign_sub(tf.cast(rate, v.dtype) * new_m /
                   (tf.sqrt(new_s) + tf.cast(eps, v.dtype)))
