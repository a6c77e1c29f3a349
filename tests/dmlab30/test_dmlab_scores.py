"""Human-normalised scores with the official code's reference values."""

import pytest

import dmlab30


def test_human_score_is_100_and_random_score_is_0():
  for level in dmlab30.LEVELS:
    human, random = dmlab30.HUMAN_SCORES[level], dmlab30.RANDOM_SCORES[level]
    for capped in (True, False):
      assert dmlab30.normalized_score(level, human, capped) == pytest.approx(100)
      assert dmlab30.normalized_score(level, random, capped) == pytest.approx(0)


def test_twice_the_human_gain_is_100_capped_and_200_uncapped():
  level = "explore_goal_locations_small"   # human 267.5, random 7.66
  score = 7.66 + 2 * (267.5 - 7.66)        # = 527.34
  assert dmlab30.normalized_score(level, score, capped=True) == 100
  assert dmlab30.normalized_score(level, score) == 100
  assert dmlab30.normalized_score(level, score, capped=False) == (
      pytest.approx(200))


def test_twice_the_human_score_on_a_level_whose_random_score_is_nonzero():
  # rooms_watermaze: human 54, random 4.065. 108 -> 103.935 / 49.935.
  assert dmlab30.normalized_score("rooms_watermaze", 108, capped=False) == (
      pytest.approx(208.1405827575849))
  assert dmlab30.normalized_score("rooms_watermaze", 108) == 100


def test_below_random_stays_negative_in_both_forms():
  # skymaze_irreversible_path_hard: human 100, random 0.1.
  assert dmlab30.normalized_score("skymaze_irreversible_path_hard", -9.89) == (
      pytest.approx(-10))


def test_official_precise_values_and_lasertag_labels():
  # The paper's Table B.1 rounds these and swaps lasertag small/large.
  assert dmlab30.HUMAN_SCORES["rooms_exploit_deferred_effects"] == 85.65
  assert dmlab30.HUMAN_SCORES["language_execute_random_task"] == 254.05
  assert dmlab30.RANDOM_SCORES["rooms_collect_good_objects"] == 0.073
  assert dmlab30.HUMAN_SCORES["lasertag_one_opponent_small"] == 12.65
  assert dmlab30.HUMAN_SCORES["lasertag_three_opponents_small"] == 18.55
  assert dmlab30.HUMAN_SCORES["lasertag_one_opponent_large"] == 18.6
  assert dmlab30.HUMAN_SCORES["lasertag_three_opponents_large"] == 31.5


def test_suite_mean_over_known_levels_equals_hand_computed_value():
  scores = {
      # (50.05 - 0.1) / (100 - 0.1) = 50%.
      "skymaze_irreversible_path_hard": 50.05,
      # Human score on the test script (human 10): 100%.
      "rooms_collect_good_objects_test": 10.0,
      # Twice the human gain: 200% uncapped, 100% capped.
      "explore_goal_locations_small": 527.34,
      # The random score: 0%. Given as episode returns (mean -5.913).
      "language_execute_random_task": [-6.913, -4.913],
  }
  assert dmlab30.suite_score(scores) == pytest.approx((50 + 100 + 100 + 0) / 4)
  assert dmlab30.suite_score(scores, capped=False) == pytest.approx(
      (50 + 100 + 200 + 0) / 4)


def test_suite_score_rejects_bad_input():
  with pytest.raises(ValueError, match="at least one"):
    dmlab30.suite_score({})
  with pytest.raises(ValueError, match="Unknown DMLab-30 level"):
    dmlab30.suite_score({"pong": 1.0})
  with pytest.raises(ValueError, match="given twice"):
    dmlab30.suite_score({"rooms_collect_good_objects": 1.0,
                         "rooms_collect_good_objects_train": 2.0})
  with pytest.raises(ValueError, match="no episode returns"):
    dmlab30.suite_score({"rooms_watermaze": []})
  with pytest.raises(ValueError, match="Missing scores for levels: .*"
                     "rooms_collect_good_objects"):
    dmlab30.suite_score({"rooms_watermaze": 5.0}, require_all=True)


def test_all_thirty_at_human_level_is_100():
  human = dict(dmlab30.HUMAN_SCORES)
  assert dmlab30.suite_score(human, require_all=True) == pytest.approx(100)
