"""The layout of one trajectory, as actors enqueue it and the learner reads it.

See docs/architecture.md for what each field means. A trajectory holds
`T + 1` steps of one environment: step `t` is the network's input at `t` and
the behaviour policy's logits there; step 0 repeats the previous unroll's
step `T`.
"""

from typing import Mapping

import numpy as np
import tensorflow as tf

from impala_tf import networks

# Per-trajectory fields that have no time dimension.
CORE_STATE_FIELDS = ("core_state_c", "core_state_h")
SCALAR_FIELDS = ("level_id", "policy_version")
# Time-indexed fields that are not observations (every trajectory has them).
STEP_FIELDS = ("reward", "done", "prev_action", "behaviour_logits",
               "episode_return", "episode_length")


def specs(unroll_length: int, num_actions: int,
          observation_spec: Mapping[str, tuple], use_lstm: bool
          ) -> dict[str, tf.TensorSpec]:
  """Field name → `tf.TensorSpec` of one trajectory (no batch dimension).

  Args:
    unroll_length: `T`; every time-indexed field has `T + 1` steps.
    num_actions: size of the action set.
    observation_spec: name → (shape, dtype) per environment, e.g.
      {"frame": ((84, 84, 4), np.uint8)}.
    use_lstm: whether the trajectory carries the initial LSTM state.
  """
  steps = unroll_length + 1
  result = {
      name: tf.TensorSpec([steps, *shape], tf.as_dtype(dtype), name=name)
      for name, (shape, dtype) in observation_spec.items()}
  result.update(
      reward=tf.TensorSpec([steps], tf.float32, name="reward"),
      done=tf.TensorSpec([steps], tf.bool, name="done"),
      prev_action=tf.TensorSpec([steps], tf.int32, name="prev_action"),
      behaviour_logits=tf.TensorSpec([steps, num_actions], tf.float32,
                                     name="behaviour_logits"),
      level_id=tf.TensorSpec([], tf.int32, name="level_id"),
      policy_version=tf.TensorSpec([], tf.int64, name="policy_version"),
      episode_return=tf.TensorSpec([steps], tf.float32,
                                   name="episode_return"),
      episode_length=tf.TensorSpec([steps], tf.int32, name="episode_length"),
  )
  if use_lstm:
    for name in CORE_STATE_FIELDS:
      result[name] = tf.TensorSpec([networks.CORE_SIZE], tf.float32,
                                   name=name)
  return result


def is_time_indexed(name: str) -> bool:
  return name not in CORE_STATE_FIELDS + SCALAR_FIELDS


def to_time_major(batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Swaps `[B, T+1, ...]` to `[T+1, B, ...]` for the time-indexed fields."""
  result = {}
  for name, value in batch.items():
    if is_time_indexed(name):
      perm = [1, 0] + list(range(2, value.shape.rank))
      value = tf.transpose(value, perm)
    result[name] = value
  return result


def observation_names(batch: Mapping[str, object]) -> list[str]:
  """The observation fields of a trajectory batch ("frame", "instruction")."""
  known = STEP_FIELDS + CORE_STATE_FIELDS + SCALAR_FIELDS
  return sorted(name for name in batch if name not in known)


def zeros(spec: Mapping[str, tf.TensorSpec], batch_size: int
          ) -> dict[str, np.ndarray]:
  """A batch of all-zero trajectories `[batch_size, ...]` (for building)."""
  return {name: np.zeros([batch_size, *s.shape], s.dtype.as_numpy_dtype)
          for name, s in spec.items()}
