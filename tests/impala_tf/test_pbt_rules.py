"""Population-based training's rules (App. F) on synthetic values."""

import math

import numpy as np
import pytest

from atari57 import scores
from impala_tf.config import presets
from impala_tf import suites
from impala_tf.pbt import lineage
from impala_tf.pbt import rules


def test_a_copy_happens_exactly_above_the_threshold_and_never_below():
  assert not rules.should_copy(50.0, 55.0, 5.0)      # Equal: not more.
  assert rules.should_copy(50.0, 55.001, 5.0)
  assert not rules.should_copy(50.0, 54.999, 5.0)
  assert not rules.should_copy(60.0, 50.0, 5.0)      # Worse.
  assert rules.should_copy(-0.5, 0.9, 0.5)           # Returns, any sign.
  assert not rules.should_copy(math.nan, 90.0, 5.0)
  assert not rules.should_copy(10.0, math.nan, 5.0)
  # A negative threshold copies even a slightly worse member.
  assert rules.should_copy(1.0, 0.5, -1.0)


def test_explore_changes_a_hyperparameter_a_third_of_the_time_half_each_way():
  # App. F: "permuted with 33% probability by multiplying with either 1.2
  # or 1/1.2": a change with probability 1/3 in all, 1/6 each way.
  rng = np.random.default_rng(7)
  start = {"learning_rate": 1e-3, "entropy_cost": 1e-2,
           "rmsprop_epsilon": 0.1, "max_grad_norm": 40.0}
  ratios = {name: [] for name in start}
  draws = 60_000
  for _ in range(draws):
    after = rules.explore(start, rng, rules.Rules())
    for name, value in after.items():
      ratios[name].append(value / start[name])
  for name, values in ratios.items():
    values = np.array(values)
    up = np.isclose(values, 1.2)
    down = np.isclose(values, 1 / 1.2)
    same = np.isclose(values, 1.0)
    assert (up | down | same).all(), name
    # Binomial bounds at 5 standard deviations (and the seed is fixed):
    # 0.0096 for the share changed, 0.0076 for each way.
    for share, p in ((1 - same.mean(), 1 / 3), (up.mean(), 1 / 6),
                     (down.mean(), 1 / 6)):
      assert share == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / draws)
                                    ), name
    # Unbiased in log space: as often up as down.
    assert abs(np.log(values).mean()) < 5 * math.log(1.2) * math.sqrt(
        1 / 3 / draws)


def test_explore_rates_and_the_schedule_default():
  # The rate is the chance of any change: 0 never changes, 1 always does.
  rng = np.random.default_rng(0)
  for probability, changed in ((0.0, 0), (1.0, 200)):
    r = rules.Rules(perturb_probability=probability)
    values = [rules.explore({"learning_rate": 1e-3}, rng, r)["learning_rate"]
              for _ in range(200)]
    assert sum(v != 1e-3 for v in values) == changed
  with pytest.raises(ValueError, match="perturb_probability"):
    rules.Rules(perturb_probability=1.5)
  # [paper Fig. F.1, our reading] members do not anneal unless asked.
  assert rules.Rules().anneal is False


def test_initial_draws_follow_table_d1():
  config = presets.ATARI
  draws = [rules.initial_hyperparameters(config, rules.member_rng(0, m))
           for m in range(2_000)]
  lr = np.array([d["learning_rate"] for d in draws])
  entropy = np.array([d["entropy_cost"] for d in draws])
  assert lr.min() >= 5e-6 and lr.max() <= 5e-3
  assert entropy.min() >= 5e-5 and entropy.max() <= 1e-2
  # Log-uniform: half below the geometric middle, a tenth per tenth in log.
  assert (lr < math.sqrt(5e-6 * 5e-3)).mean() == pytest.approx(0.5, abs=0.04)
  assert (entropy < math.sqrt(5e-5 * 1e-2)).mean() == pytest.approx(
      0.5, abs=0.04)
  epsilons, counts = np.unique([d["rmsprop_epsilon"] for d in draws],
                               return_counts=True)
  np.testing.assert_allclose(epsilons, [1e-7, 1e-5, 1e-3, 1e-1])
  assert (counts / len(draws)) == pytest.approx([0.25] * 4, abs=0.04)
  # Atari clips the gradient, so it is tuned too: log-uniform around 40.
  clip = np.array([d["max_grad_norm"] for d in draws])
  assert clip.min() >= 10.0 and clip.max() <= 160.0
  assert (clip < 40.0).mean() == pytest.approx(0.5, abs=0.04)
  # The same member draws the same on every host; members differ.
  again = rules.initial_hyperparameters(config, rules.member_rng(0, 3))
  assert again == draws[3] and draws[3] != draws[4]


def test_dmlab_tunes_three_and_config_mode_keeps_the_flags():
  assert rules.tuned_names(presets.DMLAB30) == (
      "learning_rate", "entropy_cost", "rmsprop_epsilon")
  assert rules.tuned_names(presets.ATARI)[-1] == "max_grad_norm"
  drawn = rules.initial_hyperparameters(presets.DMLAB30,
                                        rules.member_rng(0, 0))
  assert "max_grad_norm" not in drawn  # DMLab does not clip.
  kept = rules.initial_hyperparameters(
      presets.DMLAB30, rules.member_rng(0, 0), mode="config")
  assert kept == {"learning_rate": presets.DMLAB30.learning_rate,
                  "entropy_cost": presets.DMLAB30.entropy_cost,
                  "rmsprop_epsilon": presets.DMLAB30.rmsprop_epsilon}
  with pytest.raises(ValueError, match="table_d1"):
    rules.initial_hyperparameters(presets.ATARI, rules.member_rng(0, 0),
                                  mode="sweep")


def test_burn_in_is_respected_and_ready_needs_new_episodes():
  r = rules.Rules(burn_in_frames=20_000_000, ready_episodes=5_000)
  assert not rules.is_ready(19_999_999, 1_000_000, r)
  assert not rules.is_ready(20_000_000, 4_999, r)
  assert rules.is_ready(20_000_000, 5_000, r)
  with pytest.raises(ValueError, match="ready_episodes"):
    rules.Rules(ready_episodes=0)


def test_fitness_is_the_mean_capped_score_or_the_mean_return():
  atari = suites.get("atari57")
  # Breakout far above human (capped at 100), Pong at random (about 0).
  returns = {"breakout": [400.0, 500.0], "pong": [-20.7]}
  expected = (min(100.0, scores.normalized_score("breakout", 450.0)) +
              scores.normalized_score("pong", -20.7)) / 2
  assert rules.fitness(atari, returns) == pytest.approx(expected)
  assert rules.fitness(atari, returns) == pytest.approx(50.0, abs=0.5)
  assert rules.fitness(atari, {"pong": [1.0, 3.0]}) == 2.0
  assert math.isnan(rules.fitness(atari, {"pong": [1.0], "breakout": []}))
  assert rules.fitness_kind(atari, ["pong", "breakout"]).startswith(
      "mean capped")
  assert rules.fitness_kind(atari, ["pong"]) == "mean episode return"


def test_pick_opponent_is_uniform_over_the_others():
  rng = np.random.default_rng(0)
  picks = [rules.pick_opponent(1, [0, 1, 2, 3], rng) for _ in range(3_000)]
  values, counts = np.unique(picks, return_counts=True)
  assert list(values) == [0, 2, 3]
  assert counts / 3_000 == pytest.approx([1 / 3] * 3, abs=0.04)
  assert rules.pick_opponent(1, [1], rng) is None


def test_the_lineage_traces_back_through_copies():
  events = [
      {"member": 1, "frames": 100, "copied": True, "source": 0,
       "source_frames": 90},
      {"member": 0, "frames": 80, "copied": True, "source": 2,
       "source_frames": 70},
      {"member": 0, "frames": 95, "copied": False},
      # Member 0 wrote the checkpoint member 1 copied (at 90) and then, at
      # the same ready step, copied member 3: that copy is not an ancestor.
      {"member": 0, "frames": 90, "copied": True, "source": 3,
       "source_frames": 60},
      {"member": 1, "frames": 200, "copied": False},
  ]
  assert lineage.trace(events, 1) == [(2, 0, 70), (0, 80, 90),
                                      (1, 100, math.inf)]
  assert lineage.trace(events, 2) == [(2, 0, math.inf)]
  # Before its copy, member 1's weights were its own.
  assert lineage.trace(events, 1, end_frames=99) == [(1, 0, 99)]
