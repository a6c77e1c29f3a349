"""The 30 DMLab-30 levels, their training and test level scripts.

Names follow DeepMind Lab's `game_scripts/levels/contributed/dmlab30/` and the
official IMPALA code (deepmind/scalable_agent, dmlab30.py). Two rooms levels
have separate scripts for training and for the held-out test regime
(`*_train` / `*_test`); the other 28 use one script for both. This module uses
the name without suffix as the level's canonical name.
"""

LEVEL_PREFIX = "contributed/dmlab30/"

# Canonical name -> (training script, test script), in the official code's
# order (rooms, language, lasertag, natlab, skymaze, psychlab, explore).
_SCRIPTS = {
    "rooms_collect_good_objects": ("rooms_collect_good_objects_train",
                                   "rooms_collect_good_objects_test"),
    "rooms_exploit_deferred_effects": ("rooms_exploit_deferred_effects_train",
                                       "rooms_exploit_deferred_effects_test"),
    "rooms_select_nonmatching_object": None,
    "rooms_watermaze": None,
    "rooms_keys_doors_puzzle": None,
    "language_select_described_object": None,
    "language_select_located_object": None,
    "language_execute_random_task": None,
    "language_answer_quantitative_question": None,
    "lasertag_one_opponent_small": None,
    "lasertag_three_opponents_small": None,
    "lasertag_one_opponent_large": None,
    "lasertag_three_opponents_large": None,
    "natlab_fixed_large_map": None,
    "natlab_varying_map_regrowth": None,
    "natlab_varying_map_randomized": None,
    "skymaze_irreversible_path_hard": None,
    "skymaze_irreversible_path_varied": None,
    "psychlab_arbitrary_visuomotor_mapping": None,
    "psychlab_continuous_recognition": None,
    "psychlab_sequential_comparison": None,
    "psychlab_visual_search": None,
    "explore_object_locations_small": None,
    "explore_object_locations_large": None,
    "explore_obstructed_goals_small": None,
    "explore_obstructed_goals_large": None,
    "explore_goal_locations_small": None,
    "explore_goal_locations_large": None,
    "explore_object_rewards_few": None,
    "explore_object_rewards_many": None,
}

#: The 30 canonical level names (no prefix, no _train/_test suffix).
LEVELS: tuple[str, ...] = tuple(_SCRIPTS)

#: Levels outside DMLab-30 that the paper trains on, with their DeepMind Lab
#: level paths: Table 2's T5 is a level of DeepMind Lab's own set.
EXTRA_LEVELS = {"seekavoid_arena_01": "seekavoid_arena_01"}

#: The five tasks of the paper's Table 2 (Sec. 5.2.2), T1 to T5; `--levels=
#: table2` selects them.
TABLE2: tuple[str, ...] = (
    "rooms_watermaze", "rooms_keys_doors_puzzle",
    "lasertag_three_opponents_small", "explore_goal_locations_small",
    "seekavoid_arena_01")
TABLE2_ALIAS = "table2"

#: Levels whose instruction channel (INSTR) carries language.
LANGUAGE_LEVELS: tuple[str, ...] = tuple(
    name for name in LEVELS if name.startswith("language_"))

#: Psychlab levels that show images of the Brady et al. (2008) object dataset
#: ("drawn from a set of ~2500", DMLab-30 README), which DeepMind Lab reads
#: from its `datasetPath` setting.
PSYCHLAB_DATASET_LEVELS: tuple[str, ...] = (
    "psychlab_arbitrary_visuomotor_mapping",
    "psychlab_continuous_recognition",
)


def _paths(name: str) -> tuple[str, str]:
  """The (training, test) level paths of a level."""
  canonical = canonical_name(name)
  if canonical in EXTRA_LEVELS:
    return (EXTRA_LEVELS[canonical],) * 2
  scripts = _SCRIPTS[canonical] or (canonical, canonical)
  return tuple(LEVEL_PREFIX + script for script in scripts)


def canonical_name(name: str) -> str:
  """Maps a level name (canonical, a `_train`/`_test` script name, or either
  with the `contributed/dmlab30/` prefix) to its canonical name.

  Raises:
    ValueError: if `name` is not a DMLab-30 level; the message lists them.
  """
  if not isinstance(name, str):
    raise TypeError(f"A DMLab-30 level name must be a str, got {name!r}.")
  bare = name[len(LEVEL_PREFIX):] if name.startswith(LEVEL_PREFIX) else name
  if bare in _SCRIPTS or name in EXTRA_LEVELS:
    return bare
  for canonical, scripts in _SCRIPTS.items():
    if scripts is not None and bare in scripts:
      return canonical
  raise ValueError(
      f"Unknown DMLab-30 level {name!r}. Valid levels: {', '.join(LEVELS)} "
      f"(the two rooms levels with separate scripts also accept their "
      f"'_train'/'_test' names), and Table 2's "
      f"{', '.join(EXTRA_LEVELS)}.")


def train_level(name: str) -> str:
  """Full DeepMind Lab level path used for training, e.g.
  'contributed/dmlab30/rooms_collect_good_objects_train'."""
  return _paths(name)[0]


def test_level(name: str) -> str:
  """Full DeepMind Lab level path used for evaluation, e.g.
  'contributed/dmlab30/rooms_collect_good_objects_test'."""
  return _paths(name)[1]


# pytest would otherwise collect `test_level` as a test when a test module
# imports it by name.
test_level.__test__ = False
