"""The suite registry and interface: lookup by name, the three built-in
suites, a suite added from outside, and the checks experiment.build makes."""

import dm_env
from dm_env import specs
import numpy as np
import pytest

from impala_tf.acting import envs
from impala_tf.config import experiment
from impala_tf.config import presets
from impala_tf import suites


def test_builtin_suites_are_found_by_name():
  assert {"atari57", "dmlab30", "catch"} <= set(suites.names())
  for name in ("atari57", "dmlab30", "catch"):
    suite = suites.get(name)
    assert suite.name == name
    assert presets.get(suite.default_preset).frames_per_step == (
        suite.action_repeat)


def test_unknown_suite_names_the_accepted_ones():
  with pytest.raises(ValueError, match=r"Unknown suite 'atari'; expected one "
                     r"of atari57, catch, dm_env, dmlab30, gymnasium\. Did you mean "
                     r"'atari57'"):
    suites.get("atari")


def test_unknown_levels_get_the_suites_closest_name_errors():
  with pytest.raises(ValueError, match="'breakout'"):
    experiment.build("atari57", ["breakut"])
  with pytest.raises(ValueError, match="Valid levels: rooms_collect"):
    experiment.build("dmlab30", ["rooms_watermase"])
  with pytest.raises(ValueError, match="one level, 'catch'"):
    experiment.build("catch", ["pong"])
  with pytest.raises(ValueError, match="more than once"):
    experiment.build("atari57", ["pong", "Pong"])


def test_action_repeat_and_frames_per_step_must_agree():
  with pytest.raises(ValueError, match=r"frames_per_step=4 but suite "
                     r"'catch' repeats each action for 1 frame"):
    experiment.build("catch", config=presets.ATARI)
  with pytest.raises(ValueError, match="frames_per_step=1 but suite "
                     "'atari57' repeats each action for 4"):
    experiment.build("atari57", config=presets.CATCH)


def test_dmlab30_gives_every_level_the_same_number_of_environments():
  # 150 environments over 30 levels (the paper's 150 actors): 5 each, spread
  # round-robin across actors' environments.
  exp = experiment.build("dmlab30", envs_per_actor=5)
  assert exp.num_actions == 9
  assert exp.observation_spec["instruction"] == ((16,), np.int32)
  ids = np.concatenate([exp.level_ids(i) for i in range(30)])
  assert ids.tolist() == list(range(30)) * 5
  assert np.bincount(ids).tolist() == [5] * 30


def test_atari_assigns_one_game_per_actor_and_needs_18_actions_for_several():
  exp = experiment.build("atari57", ["pong", "breakout", "qbert"],
                         envs_per_actor=4)
  assert exp.num_actions == 18 and exp.env_options["full_action_space"]
  assert exp.action_names[:3] == ("NOOP", "FIRE", "UP")
  assert [exp.level_ids(i).tolist() for i in range(4)] == [
      [0] * 4, [1] * 4, [2] * 4, [0] * 4]
  with pytest.raises(ValueError, match="full 18-action set"):
    experiment.build("atari57", ["pong", "breakout"],
                     env_options={"full_action_space": False})
  pong = experiment.build("atari57")
  assert pong.levels == ("pong",) and pong.num_actions == 6
  assert pong.frame_stack == 4 and pong.envs_per_actor == 16


def test_unknown_environment_option_is_refused():
  with pytest.raises(ValueError, match=r"no environment option\(s\) "
                     r"\['sticky'\]"):
    experiment.build("atari57", env_options={"sticky": 0.25})


def test_atari_evaluation_env_plays_whole_games_after_1_to_30_noops():
  suite = suites.get("atari57")
  # Games capped at 160 frames = 40 agent steps keep this cheap.
  env = suite.make_eval_env("pong", 4, seed=3,
                            options={"max_episode_frames": 160})
  out = env.reset()
  agent_steps = np.zeros(4, np.int64)  # Steps the agent controlled.
  controlled = np.zeros(4, bool)
  finished = []
  for _ in range(200):
    out = env.step(np.full(4, 3, np.int32))  # The agent always says RIGHT.
    agent_steps += controlled
    controlled |= out.done
    ended = ~np.isnan(out.episode_return)
    for i in np.flatnonzero(ended):
      finished.append(agent_steps[i])
      agent_steps[i] = 0
      controlled[i] = False
  env.close()
  # Each 40-step game: 1..30 no-ops, then the agent's steps (the step that
  # ends the game included).
  finished = np.array(finished)
  assert len(finished) >= 16
  assert finished.min() >= 40 - 30 and finished.max() <= 40 - 1
  assert len(np.unique(finished)) >= 8


def test_catch_evaluation_env_plays_plain_episodes():
  env = suites.get("catch").make_eval_env("catch", 3, seed=0, options={})
  out = env.reset()
  for _ in range(9):
    out = env.step(np.ones(3, np.int32))
  assert not np.isnan(out.episode_return).any()
  assert set(out.episode_return.tolist()) <= {-1.0, 1.0}


def test_suite_scores_are_percent_in_every_suite():
  atari = suites.get("atari57")
  assert atari.normalized_score("pong", 14.6) == pytest.approx(100.0)
  assert atari.suite_scores({"pong": 14.6, "breakout": 1.7}) == pytest.approx(
      {"mean": 50.0, "median": 50.0, "capped_mean": 50.0})
  dmlab = suites.get("dmlab30")
  assert dmlab.normalized_score("rooms_watermaze", 54.0) == pytest.approx(100)
  assert dmlab.suite_scores({"rooms_watermaze": 54.0 + 2 * 49.935})[
      "capped_mean"] == pytest.approx(100.0)
  assert suites.get("catch").suite_scores({"catch": 1.0}) == {}


# The ten-line example of docs/architecture.md, as a test: a suite added
# from outside the package trains through the same code as the built-ins.
class _Coin(dm_env.Environment):
  """Guess the side of a coin shown in the frame; +1 if right."""

  def __init__(self, seed):
    self._rng = np.random.default_rng(seed)

  def reset(self):
    self._side = int(self._rng.integers(2))
    return dm_env.restart(np.full((4, 4, 1), 255 * self._side, np.uint8))

  def step(self, action):
    return dm_env.termination(float(action == self._side),
                              np.zeros((4, 4, 1), np.uint8))

  def observation_spec(self):
    return specs.Array((4, 4, 1), np.uint8)

  def action_spec(self):
    return specs.DiscreteArray(2)


class CoinSuite(suites.Suite):
  name, default_preset, default_levels = "coin", "catch", ("coin",)
  envs_per_actor, action_repeat = 4, 1

  def canonical_level(self, name):
    return name

  def env_spec(self, levels, options):
    return suites.EnvSpec(2, ("HEADS", "TAILS"),
                          {"frame": ((4, 4, 1), np.uint8)}, 1)

  def make_train_env(self, levels, level_ids, seed, options):
    return envs.DmEnvBatch([_Coin(seed + j) for j in range(len(level_ids))],
                           2)

  make_eval_env = lambda self, level, n, seed, options: (
      self.make_train_env([level], np.zeros(n), seed, options))


def test_a_suite_registered_from_outside_builds_and_steps():
  suites.register(CoinSuite())
  assert "coin" in suites.names()
  exp = experiment.build("coin")
  assert (exp.levels, exp.num_actions, exp.envs_per_actor) == (("coin",), 2, 4)
  env = exp.make_env(0)
  out = env.reset()
  assert out.observation["frame"].shape == (4, 4, 4, 1)
  out = env.step(np.zeros(4, np.int32))
  assert out.done.all() and set(out.episode_return) <= {0.0, 1.0}
  with pytest.raises(ValueError, match="already registered"):
    suites.register(type("Other", (CoinSuite,), {})())
