"""Every shipped preset builds, and impossible combinations are refused."""

import dataclasses

import pytest

from impala_tf import launch_flags
from impala_tf.config import experiment
from impala_tf.config import presets
from impala_tf.pbt import rules


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


def test_atari_fast_changes_only_its_five_values_of_ours():
  fast, paper = presets.ATARI_FAST, presets.ATARI
  changed = {f.name for f in dataclasses.fields(presets.Config)
             if getattr(fast, f.name) != getattr(paper, f.name)}
  assert changed == {"batch_size", "rmsprop_epsilon", "total_frames",
                     "passes_per_batch", "ppo_clip"}
  assert (fast.batch_size, fast.rmsprop_epsilon, fast.total_frames,
          fast.passes_per_batch, fast.ppo_clip) == (8, 1e-5, 10_000_000, 4,
                                                    0.2)
  plan = launch_flags.plan_from_argv(
      ["impala_tf.launch", "--preset=atari_fast"], environ={})
  assert plan.experiment.levels == ("pong",)
  assert plan.experiment.config == fast


def test_dmlab_presets_have_table_d3_values():
  assert presets.DMLAB_SINGLE_TASK.unroll_length == 100
  assert presets.DMLAB_SINGLE_TASK.reward_clipping == "abs_one"
  assert presets.DMLAB30.use_instruction and presets.DMLAB30.use_lstm


def test_dmlab30_is_the_released_codes_multi_task_recipe():
  c = presets.DMLAB30
  assert (c.batch_size, c.learning_rate, c.entropy_cost, c.total_frames,
          c.reward_clipping) == (
              32, 0.00031866995608948655, 0.0033391318945337044,
              10_000_000_000, "scalable_agent_soft_asymmetric")
  assert presets.DMLAB30_PAPER_CLIPPING == c.replace(
      reward_clipping="soft_asymmetric")


def test_one_rho_bar_unless_the_policy_gradient_one_is_given():
  c = presets.ATARI.replace(clip_rho_threshold=10.0, clip_c_threshold=1.0)
  assert c.pg_rho_threshold == 10.0
  assert c.replace(clip_pg_rho_threshold=1.0).pg_rho_threshold == 1.0
  assert c.replace(clip_pg_rho_threshold=None).pg_rho_threshold is None


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
    (dict(clip_pg_rho_threshold="same"), "clip_pg_rho_threshold"),
    (dict(correction="retrace"), "correction"),
    (dict(replay_capacity=8), "at least one batch"),
    (dict(replay_fraction=1.0), "replay_fraction"),
    (dict(policy_lag=-1), "policy_lag"),
    (dict(policy_lag=2, replay_capacity=1000), "cannot be combined"),
    (dict(optimizer="sgd"), "optimizer='sgd', expected one of"),
    (dict(adam_beta2=1.0), "adam_beta2"),
])
def test_impossible_combinations_are_rejected(changes, message):
  with pytest.raises(ValueError, match=message):
    presets.ATARI.replace(**changes)


def test_unknown_preset_lists_the_known_ones():
  with pytest.raises(ValueError, match="atari"):
    presets.get("procgen")


def test_a_replay_fraction_that_leaves_nothing_fresh_is_refused():
  with pytest.raises(ValueError, match="leaves no fresh trajectory"):
    presets.ATARI.replace(replay_capacity=100, replay_fraction=0.99)


def test_several_atari_games_get_the_multi_task_agent_of_table_g1():
  exp = experiment.build("atari57", ["pong", "breakout"])
  assert exp.config == presets.ATARI_MULTITASK
  assert exp.config.torso == "deep" and not exp.config.use_lstm
  assert exp.num_actions == 18  # The full action set.
  assert exp.config.total_frames == 11_400_000_000  # 200M x 57 games.
  # PBT tunes the clip threshold too on Atari (Table G.1).
  assert rules.tuned_names(exp.config)[-1] == "max_grad_norm"
  assert experiment.build("atari57", ["pong"]).config == presets.ATARI
