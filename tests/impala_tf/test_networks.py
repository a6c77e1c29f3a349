"""The paper's networks: shapes, parameter counts, unroll vs stepping."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import networks

ATARI_SPEC = {"frame": ((84, 84, 4), np.uint8)}
DMLAB_SPEC = {"frame": ((72, 96, 3), np.uint8),
              "instruction": ((16,), np.int32)}


def _random_input(rng, spec, num_actions, num_steps, batch_size,
                  done_prob=0.0):
  lead = (num_steps, batch_size)
  observation = {}
  for name, (shape, dtype) in spec.items():
    if name == "frame":
      observation[name] = rng.integers(0, 256, lead + shape).astype(dtype)
    else:
      tokens = rng.integers(1, networks.INSTRUCTION_BUCKETS + 1, lead + shape)
      tokens[..., 5:] = 0  # Five words, then padding.
      observation[name] = tokens.astype(dtype)
  return networks.AgentInput(
      prev_action=rng.integers(0, num_actions, lead).astype(np.int32),
      reward=rng.normal(0, 3, lead).astype(np.float32),
      done=rng.uniform(size=lead) < done_prob,
      observation=observation)


@pytest.mark.parametrize("torso", ["shallow", "deep"])
@pytest.mark.parametrize("use_lstm", [True, False])
def test_atari_output_shapes(torso, use_lstm):
  net = networks.ImpalaNetwork(18, torso=torso, use_lstm=use_lstm)
  inputs = _random_input(np.random.default_rng(0), ATARI_SPEC, 18, 3, 2)
  out, state = net.unroll(inputs, net.initial_state(2))
  assert out.policy_logits.shape == (3, 2, 18)
  assert out.baseline.shape == (3, 2)
  if use_lstm:
    assert state.hidden.shape == (2, networks.CORE_SIZE)
  else:
    assert state == ()


@pytest.mark.parametrize("torso", ["shallow", "deep"])
def test_dmlab_output_shapes(torso):
  net = networks.ImpalaNetwork(9, torso=torso, use_instruction=True)
  inputs = _random_input(np.random.default_rng(0), DMLAB_SPEC, 9, 4, 3)
  out, _ = net.unroll(inputs, net.initial_state(3))
  assert out.policy_logits.shape == (4, 3, 9)
  assert out.baseline.shape == (4, 3)


@pytest.mark.parametrize("torso,paper_count", [("shallow", 1.2e6),
                                               ("deep", 1.6e6)])
def test_parameter_counts_match_the_paper(torso, paper_count):
  net = networks.ImpalaNetwork(9, torso=torso, use_instruction=True)
  net(tf.nest.map_structure(lambda x: x[0], networks.dummy_input(
      DMLAB_SPEC, batch_size=1, num_steps=1)), net.initial_state(1))
  count = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
  assert abs(count - paper_count) / paper_count < 0.05, count


@pytest.mark.parametrize("spec,channels", [(DMLAB_SPEC, 3), (ATARI_SPEC, 4)])
def test_the_shallow_torso_has_fig_3s_two_convolutions(spec, channels):
  # [paper Fig. 3] two convolutions, not Sec. 5.3.2's "three"
  # (networks.py's docstring gives both readings).
  net = networks.ImpalaNetwork(9, torso="shallow",
                               use_instruction="instruction" in spec)
  net(tf.nest.map_structure(lambda x: x[0], networks.dummy_input(
      spec, batch_size=1, num_steps=1)), net.initial_state(1))
  kernels = [tuple(v.shape) for v in net.trainable_variables
             if "shallow_torso" in v.name and len(v.shape) == 4]
  assert kernels == [(8, 8, channels, 16), (4, 4, 16, 32)]
  if spec is DMLAB_SPEC:
    # Fig. 3's 1.2M: convolutions 11,312, FC 573,696, LSTM 601,088,
    # language 41,780, heads 2,570.
    count = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
    assert count == 1_230_446


@pytest.mark.parametrize("torso", ["shallow", "deep"])
def test_unroll_equals_stepping_with_resets(torso):
  rng = np.random.default_rng(1)
  net = networks.ImpalaNetwork(9, torso=torso, use_instruction=True)
  num_steps, batch_size = 6, 3
  inputs = _random_input(rng, DMLAB_SPEC, 9, num_steps, batch_size,
                         done_prob=0.3)
  inputs.done[2, 1] = True  # At least one reset inside the unroll.
  state0 = tf.nest.map_structure(
      lambda s: tf.constant(rng.normal(size=s.shape), tf.float32),
      net.initial_state(batch_size))

  unrolled, final = net.unroll(inputs, state0)
  state = state0
  for t in range(num_steps):
    step_input = tf.nest.map_structure(lambda x: x[t], inputs)
    out, state = net(step_input, state)
    np.testing.assert_allclose(out.policy_logits, unrolled.policy_logits[t],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.baseline, unrolled.baseline[t],
                               rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(state.cell, final.cell, rtol=1e-4, atol=1e-5)


def test_done_resets_the_core_state():
  rng = np.random.default_rng(2)
  net = networks.ImpalaNetwork(4, use_lstm=True)
  inputs = _random_input(rng, ATARI_SPEC, 4, 1, 2)
  inputs.done[:] = True
  fresh, _ = net.unroll(inputs, net.initial_state(2))
  random_state = tf.nest.map_structure(
      lambda s: tf.constant(rng.normal(size=s.shape) * 5, tf.float32),
      net.initial_state(2))
  reset, _ = net.unroll(inputs, random_state)
  np.testing.assert_allclose(fresh.policy_logits, reset.policy_logits,
                             atol=1e-6)
  inputs.done[:] = False
  carried, _ = net.unroll(inputs, random_state)
  assert not np.allclose(fresh.policy_logits, carried.policy_logits)


def test_instruction_changes_the_output():
  rng = np.random.default_rng(3)
  net = networks.ImpalaNetwork(9, use_instruction=True)
  inputs = _random_input(rng, DMLAB_SPEC, 9, 1, 2)
  out1, _ = net.unroll(inputs, net.initial_state(2))
  tokens = inputs.observation["instruction"].copy()
  tokens[..., 0] = tokens[..., 0] % networks.INSTRUCTION_BUCKETS + 1
  tokens[..., 1] = 7
  inputs.observation["instruction"] = tokens
  out2, _ = net.unroll(inputs, net.initial_state(2))
  assert not np.allclose(out1.policy_logits, out2.policy_logits)


def test_instruction_padding_does_not_change_the_encoding():
  encoder = networks.InstructionEncoder()
  short = np.array([[5, 9, 0, 0]], np.int32)
  longer_pad = np.array([[5, 9, 0, 0, 0, 0, 0]], np.int32)
  np.testing.assert_allclose(encoder(short), encoder(longer_pad), atol=1e-6)
  assert not np.allclose(encoder(short), encoder(np.array([[5, 0, 0, 0]])))


def test_reward_input_is_clipped_to_unit_range():
  rng = np.random.default_rng(4)
  net = networks.ImpalaNetwork(4, use_lstm=False)
  inputs = _random_input(rng, ATARI_SPEC, 4, 1, 1)
  inputs = inputs._replace(reward=np.full((1, 1), 1.0, np.float32))
  at_one, _ = net.unroll(inputs, ())
  inputs = inputs._replace(reward=np.full((1, 1), 250.0, np.float32))
  at_large, _ = net.unroll(inputs, ())
  np.testing.assert_allclose(at_one.policy_logits, at_large.policy_logits)


def test_unknown_torso_is_rejected():
  with pytest.raises(ValueError, match="shallow"):
    networks.ImpalaNetwork(4, torso="resnet50")


@pytest.mark.parametrize("torso", ["shallow", "deep"])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_channels_first_frames_give_the_same_step(torso, precision):
  """The actor hands ale-py's channels-first memory to the network, which
  transposes it while scaling: the step must equal the channels-last one."""
  net = networks.ImpalaNetwork(6, torso, use_lstm=False, precision=precision)
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (3, 84, 84, 4), dtype=np.uint8)
  step = lambda frame, first: net(networks.AgentInput(
      tf.constant([0, 1, 2]), tf.zeros([3]), tf.zeros([3], tf.bool),
      {"frame": tf.constant(frame)}), (), frames_channels_first=first)[0]
  last = step(frames, False)
  first = step(np.ascontiguousarray(np.moveaxis(frames, -1, 1)), True)
  np.testing.assert_array_equal(first.policy_logits, last.policy_logits)
  np.testing.assert_array_equal(first.baseline, last.baseline)


def test_frames_are_scaled_as_tf_scales_them_in_a_graph():
  """The fused scaling is the float32 of TF's own graph, bit for bit, and
  in bfloat16 that float32 rounded."""
  pixels = tf.constant(np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1))
  graph = tf.function(lambda x: tf.cast(x, tf.float32) / 255.0)(pixels)
  scaled = networks._scaled_frames  # pylint: disable=protected-access
  np.testing.assert_array_equal(scaled(pixels), graph)
  np.testing.assert_array_equal(
      tf.cast(scaled(pixels, tf.bfloat16), tf.float32),
      tf.cast(tf.cast(graph, tf.bfloat16), tf.float32))
  np.testing.assert_allclose(graph, np.arange(256).reshape(1, 16, 16, 1) / 255,
                             rtol=1e-7)
