"""Every shipped preset builds, and impossible combinations are refused."""

import pytest

from impala_tf import presets


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_builds_and_is_frozen(name):
  config = presets.get(name)
  assert config == presets.PRESETS[name].replace()
  with pytest.raises(AttributeError):
    config.learning_rate = 1.0  # frozen


def test_atari_preset_has_table_g1_values():
  c = presets.ATARI
  assert (c.unroll_length, c.batch_size, c.discount, c.entropy_cost,
          c.baseline_cost, c.learning_rate, c.rmsprop_epsilon,
          c.rmsprop_momentum, c.max_grad_norm, c.reward_clipping) == (
              20, 32, 0.99, 0.01, 0.5, 6e-4, 0.01, 0.0, 40.0, "abs_one")
  assert c.frames_per_update == 32 * 20 * 4


def test_dmlab_presets_have_table_d3_values():
  assert presets.DMLAB_SINGLE_TASK.unroll_length == 100
  assert presets.DMLAB_SINGLE_TASK.reward_clipping == "abs_one"
  assert presets.DMLAB30.reward_clipping == "soft_asymmetric"
  assert presets.DMLAB30.use_instruction and presets.DMLAB30.use_lstm


@pytest.mark.parametrize("changes,message", [
    (dict(torso="resnet"), "torso"),
    (dict(reward_clipping="clip"), "reward_clipping"),
    (dict(clip_rho_threshold=0.5, clip_c_threshold=1.0), "rho_bar >= c_bar"),
    (dict(clip_c_threshold=None), "rho_bar >= c_bar"),
    (dict(batch_size=0), "batch_size"),
    (dict(use_lstm=False, use_instruction=True), "use_instruction"),
    (dict(vtrace_lambda=2.0), "vtrace_lambda"),
    (dict(loss_reduction="max"), "loss_reduction"),
    (dict(max_grad_norm=-1.0), "max_grad_norm"),
])
def test_impossible_combinations_are_rejected(changes, message):
  with pytest.raises(ValueError, match=message):
    presets.ATARI.replace(**changes)


def test_unknown_preset_lists_the_known_ones():
  with pytest.raises(ValueError, match="atari"):
    presets.get("procgen")
