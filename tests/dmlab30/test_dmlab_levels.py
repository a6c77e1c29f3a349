"""The 30 levels, their train/test scripts and the multi-task assignment."""

import pytest

import dmlab30
from impala_tf.testing import fake_deepmind_lab


def test_exactly_the_thirty_dmlab30_levels():
  assert len(dmlab30.LEVELS) == 30
  assert len(set(dmlab30.LEVELS)) == 30
  families = [name.split("_")[0] for name in dmlab30.LEVELS]
  assert {f: families.count(f) for f in set(families)} == {
      "rooms": 5, "language": 4, "lasertag": 4, "natlab": 3, "skymaze": 2,
      "psychlab": 4, "explore": 8}
  assert set(dmlab30.HUMAN_SCORES) == set(dmlab30.LEVELS)
  assert set(dmlab30.RANDOM_SCORES) == set(dmlab30.LEVELS)


def test_rooms_levels_train_on_train_script_and_test_on_test_script():
  for name in ("rooms_collect_good_objects", "rooms_exploit_deferred_effects"):
    assert dmlab30.train_level(name) == f"contributed/dmlab30/{name}_train"
    assert dmlab30.test_level(name) == f"contributed/dmlab30/{name}_test"


def test_other_levels_use_one_script():
  assert dmlab30.train_level("rooms_watermaze") == (
      "contributed/dmlab30/rooms_watermaze")
  assert dmlab30.test_level("rooms_watermaze") == (
      "contributed/dmlab30/rooms_watermaze")
  same = [n for n in dmlab30.LEVELS
          if dmlab30.train_level(n) == dmlab30.test_level(n)]
  assert len(same) == 28


def test_every_level_path_is_a_script_deepmind_lab_has():
  paths = {dmlab30.train_level(n) for n in dmlab30.LEVELS}
  paths |= {dmlab30.test_level(n) for n in dmlab30.LEVELS}
  assert paths == fake_deepmind_lab.KNOWN_LEVELS


def test_script_and_prefixed_names_map_to_the_canonical_name():
  assert dmlab30.canonical_name("rooms_collect_good_objects_test") == (
      "rooms_collect_good_objects")
  assert dmlab30.canonical_name(
      "contributed/dmlab30/rooms_exploit_deferred_effects_train") == (
          "rooms_exploit_deferred_effects")
  assert dmlab30.test_level("rooms_collect_good_objects_train") == (
      "contributed/dmlab30/rooms_collect_good_objects_test")


def test_unknown_level_lists_the_valid_names():
  with pytest.raises(ValueError) as info:
    dmlab30.train_level("explore_goal_locations_medium")
  message = str(info.value)
  assert "explore_goal_locations_medium" in message
  for name in dmlab30.LEVELS:
    assert name in message


def test_action_set_is_table_d2():
  assert dmlab30.ACTION_SET.dtype == __import__("numpy").intc
  assert dmlab30.ACTION_SET.shape == (9, 7)
  assert dmlab30.ACTION_SET.tolist() == [
      [0, 0, 0, 1, 0, 0, 0],     # forward
      [0, 0, 0, -1, 0, 0, 0],    # backward
      [0, 0, -1, 0, 0, 0, 0],    # strafe left
      [0, 0, 1, 0, 0, 0, 0],     # strafe right
      [-20, 0, 0, 0, 0, 0, 0],   # look left
      [20, 0, 0, 0, 0, 0, 0],    # look right
      [-20, 0, 0, 1, 0, 0, 0],   # forward + look left
      [20, 0, 0, 1, 0, 0, 0],    # forward + look right
      [0, 0, 0, 0, 1, 0, 0],     # fire
  ]
  assert not dmlab30.ACTION_SET.flags.writeable
