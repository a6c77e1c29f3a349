"""`--precision=bfloat16`: the torso computes in bfloat16; variables,
optimiser state, logits and losses stay float32; float32 is unchanged."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf.config import presets
from impala_tf.agent import trajectory
from impala_tf.testing import trajectories

SPEC = {"frame": ((84, 84, 4), np.uint8)}
NUM_ACTIONS = 6


def _dtypes_of(network, op_types):
  """{(op type, output dtype)} of `op_types` in the traced unroll."""
  inputs = networks.dummy_input(SPEC, batch_size=2)
  fn = tf.function(lambda x: network(x, network.initial_state(2))[0])
  graph = fn.get_concrete_function(inputs).graph
  return {(op.type, op.outputs[0].dtype.name)
          for op in graph.get_operations() if op.type in op_types}


@pytest.mark.parametrize("torso", ["shallow", "deep"])
def test_the_torso_computes_in_bfloat16_and_the_rest_in_float32(torso):
  low = networks.ImpalaNetwork(NUM_ACTIONS, torso, False,
                               precision="bfloat16")
  low(networks.dummy_input(SPEC), low.initial_state(1))
  assert {v.dtype for v in low.variables} == {tf.float32}
  ops = _dtypes_of(low, ("Conv2D", "MatMul"))
  # Every convolution and the torso's linear layer in bfloat16; the heads'
  # matmul (logits, baseline) in float32.
  assert ("Conv2D", "bfloat16") in ops and ("Conv2D", "float32") not in ops
  assert ops >= {("MatMul", "bfloat16"), ("MatMul", "float32")}
  full = networks.ImpalaNetwork(NUM_ACTIONS, torso, False)
  full(networks.dummy_input(SPEC), full.initial_state(1))
  # float32 runs the layers as written: no bfloat16 and no cast anywhere.
  assert _dtypes_of(full, ("Conv2D", "MatMul", "Cast")) >= {
      ("Conv2D", "float32"), ("MatMul", "float32")}
  assert not any(dtype == "bfloat16" for _, dtype in
                 _dtypes_of(full, ("Conv2D", "MatMul", "Cast", "MaxPool")))


def _update(precision, batch):
  config = presets.ATARI.replace(unroll_length=5, batch_size=4,
                                 precision=precision, learning_rate=1e-3)
  tf.random.set_seed(0)  # The same initial weights for both.
  learner = learner_lib.Learner(
      config, lambda: networks.ImpalaNetwork(
          NUM_ACTIONS, "deep", False, precision=precision), SPEC)
  before = [v.numpy() for v in learner.variables]
  logs = learner.update(batch)
  after = [v.numpy() for v in learner.variables]
  step = np.concatenate([(a - b).ravel() for a, b in zip(after, before)])
  return logs, step, learner


def test_a_bfloat16_update_matches_float32_within_bfloat16_round_off():
  spec = trajectory.specs(5, NUM_ACTIONS, SPEC, False, frame_stack=1)
  batch = trajectories.random_batch(spec, NUM_ACTIONS, 4, seed=0)
  full_logs, full_step, _ = _update("float32", batch)
  low_logs, low_step, low = _update("bfloat16", batch)
  # bfloat16 keeps 8 bits of mantissa (relative round-off 2^-8 = 0.4% per
  # operation). Measured over three batches: the loss within 0.04%, the
  # gradient norm within 0.5%, the update's cosine with float32's >= 0.997.
  # Stated tolerances: 0.5%, 2% and 0.99.
  np.testing.assert_allclose(low_logs["total_loss"], full_logs["total_loss"],
                             rtol=5e-3)
  np.testing.assert_allclose(low_logs["grad_norm"], full_logs["grad_norm"],
                             rtol=2e-2)
  cosine = full_step @ low_step / (np.linalg.norm(full_step) *
                                   np.linalg.norm(low_step))
  assert cosine > 0.99, cosine
  # The optimiser's state and the variables stay float32.
  assert {v.dtype for v in low.variables} == {tf.float32}
  assert {v.dtype for v in low.optimizer.variables} <= {tf.float32, tf.int64}
