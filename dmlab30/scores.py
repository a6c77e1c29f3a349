"""Human and random reference scores and the human-normalised score.

Values are those of the official IMPALA code (deepmind/scalable_agent,
dmlab30.py), which are more precise than the paper's Table B.1 (e.g. 85.65
instead of 85.7, random 0.073 instead of 0.1) and label the lasertag levels
correctly: the paper's Table B.1 swaps "small" and "large". The
two rooms levels with held-out variants are scored on their `_test` scripts.
"""

import math
from typing import Mapping, Sequence, Union

from dmlab30 import levels as levels_lib

HUMAN_SCORES: dict[str, float] = {
    "rooms_collect_good_objects": 10.0,
    "rooms_exploit_deferred_effects": 85.65,
    "rooms_select_nonmatching_object": 65.9,
    "rooms_watermaze": 54.0,
    "rooms_keys_doors_puzzle": 53.8,
    "language_select_described_object": 389.5,
    "language_select_located_object": 280.7,
    "language_execute_random_task": 254.05,
    "language_answer_quantitative_question": 184.5,
    "lasertag_one_opponent_small": 12.65,
    "lasertag_three_opponents_small": 18.55,
    "lasertag_one_opponent_large": 18.6,
    "lasertag_three_opponents_large": 31.5,
    "natlab_fixed_large_map": 36.9,
    "natlab_varying_map_regrowth": 24.45,
    "natlab_varying_map_randomized": 42.35,
    "skymaze_irreversible_path_hard": 100.0,
    "skymaze_irreversible_path_varied": 100.0,
    "psychlab_arbitrary_visuomotor_mapping": 58.75,
    "psychlab_continuous_recognition": 58.3,
    "psychlab_sequential_comparison": 39.5,
    "psychlab_visual_search": 78.5,
    "explore_object_locations_small": 74.45,
    "explore_object_locations_large": 65.65,
    "explore_obstructed_goals_small": 206.0,
    "explore_obstructed_goals_large": 119.5,
    "explore_goal_locations_small": 267.5,
    "explore_goal_locations_large": 194.5,
    "explore_object_rewards_few": 77.7,
    "explore_object_rewards_many": 106.7,
}

RANDOM_SCORES: dict[str, float] = {
    "rooms_collect_good_objects": 0.073,
    "rooms_exploit_deferred_effects": 8.501,
    "rooms_select_nonmatching_object": 0.312,
    "rooms_watermaze": 4.065,
    "rooms_keys_doors_puzzle": 4.135,
    "language_select_described_object": -0.07,
    "language_select_located_object": 1.929,
    "language_execute_random_task": -5.913,
    "language_answer_quantitative_question": -0.33,
    "lasertag_one_opponent_small": -0.224,
    "lasertag_three_opponents_small": -0.214,
    "lasertag_one_opponent_large": -0.083,
    "lasertag_three_opponents_large": -0.102,
    "natlab_fixed_large_map": 2.173,
    "natlab_varying_map_regrowth": 2.989,
    "natlab_varying_map_randomized": 7.346,
    "skymaze_irreversible_path_hard": 0.1,
    "skymaze_irreversible_path_varied": 14.4,
    "psychlab_arbitrary_visuomotor_mapping": 0.163,
    "psychlab_continuous_recognition": 0.224,
    "psychlab_sequential_comparison": 0.129,
    "psychlab_visual_search": 0.085,
    "explore_object_locations_small": 3.575,
    "explore_object_locations_large": 4.673,
    "explore_obstructed_goals_small": 6.76,
    "explore_obstructed_goals_large": 2.61,
    "explore_goal_locations_small": 7.66,
    "explore_goal_locations_large": 3.14,
    "explore_object_rewards_few": 2.073,
    "explore_object_rewards_many": 2.438,
}

#: Per-level cap of the capped score, in percent of human.
CAP = 100.0

Score = Union[float, Sequence[float]]


def _mean_score(level: str, score: Score) -> float:
  if isinstance(score, (int, float)) and not isinstance(score, bool):
    value = float(score)
  else:
    try:
      values = [float(s) for s in score]
    except TypeError:
      raise TypeError(
          f"Score for level {level!r} must be a number or a sequence of "
          f"episode returns, got {score!r}.") from None
    if not values:
      raise ValueError(f"Level {level!r} has no episode returns to score.")
    value = math.fsum(values) / len(values)
  if not math.isfinite(value):
    raise ValueError(f"Score for level {level!r} is not finite: {value}.")
  return value


def normalized_score(level: str, score: Score, capped: bool = True) -> float:
  """Human-normalised score of one level, in percent.

  100 * (score - random) / (human - random): the human score gives 100, the
  random agent's 0. With `capped`, values above 100 are cut to 100 (the
  paper's DMLab-30 metric); below-random scores stay negative in both forms,
  as in the official code.

  Args:
    level: a DMLab-30 level name (canonical or its `_train`/`_test` name).
    score: the level's mean episode return, or a sequence of episode returns
      (their mean is used).
    capped: apply the 100 cap.
  """
  name = levels_lib.canonical_name(level)
  value = _mean_score(name, score)
  human, random = HUMAN_SCORES[name], RANDOM_SCORES[name]
  normalized = 100.0 * (value - random) / (human - random)
  return min(normalized, CAP) if capped else normalized


def suite_score(scores_by_level: Mapping[str, Score], capped: bool = True,
                require_all: bool = False) -> float:
  """Mean human-normalised score (percent) over the levels given.

  Args:
    scores_by_level: level name -> mean return, or a sequence of returns.
    capped: cap each level at 100 before averaging (the paper's headline
      DMLab-30 number); False gives the uncapped mean.
    require_all: raise unless all 30 levels are present (the official
      score); False averages over the known levels given.

  Raises:
    ValueError: on an empty mapping, an unknown level, a level given twice
      under two names, or (with `require_all`) missing levels.
  """
  if not scores_by_level:
    raise ValueError("suite_score needs at least one level's score, got none.")
  by_canonical = {}
  for level, score in scores_by_level.items():
    name = levels_lib.canonical_name(level)
    if name in by_canonical:
      raise ValueError(f"Level {name!r} is given twice (as {level!r} too).")
    by_canonical[name] = score
  if require_all:
    missing = [name for name in levels_lib.LEVELS if name not in by_canonical]
    if missing:
      raise ValueError(f"Missing scores for levels: {', '.join(missing)}.")
  values = [normalized_score(name, score, capped)
            for name, score in by_canonical.items()]
  return math.fsum(values) / len(values)
