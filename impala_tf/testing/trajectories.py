"""Random trajectory batches in the learner's layout, for tests and benchmarks."""

from typing import Mapping

import numpy as np
import tensorflow as tf

from impala_tf.agent import networks


def random_batch(specs: Mapping[str, tf.TensorSpec], num_actions: int,
                 batch_size: int, seed: int = 0, done_prob: float = 0.1
                 ) -> dict[str, tf.Tensor]:
  """`batch_size` random trajectories shaped by `specs` (`[B, T+1, ...]`).

  Frames are uniform bytes, actions valid for `num_actions`, instruction
  tokens valid ids (0 = padding included), `done` True with `done_prob`,
  every other field standard normal.
  """
  rng = np.random.default_rng(seed)
  batch = {}
  for name, spec in specs.items():
    shape = [batch_size, *spec.shape]
    if name == "prev_action":
      value = rng.integers(0, num_actions, shape)
    elif name == "instruction":
      value = rng.integers(0, networks.INSTRUCTION_BUCKETS + 1, shape)
    elif spec.dtype == tf.uint8:
      value = rng.integers(0, 256, shape)
    elif spec.dtype == tf.bool:
      value = rng.uniform(size=shape) < done_prob
    else:
      value = rng.normal(size=shape)
    batch[name] = tf.constant(np.asarray(value).astype(
        spec.dtype.as_numpy_dtype))
  return batch
