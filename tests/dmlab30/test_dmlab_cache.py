"""The on-disk level cache, through the engine's level_cache protocol."""

import os

import pytest

import dmlab30


def test_second_episode_with_same_seed_fetches_instead_of_compiling(
    fake_lab, tmp_path):
  cache_dir = tmp_path / "level_cache"
  env = dmlab30.make("explore_goal_locations_small", seed=4,
                     level_cache_dir=str(cache_dir))
  env.reset()
  lab = fake_lab.fake_created[-1]
  assert lab.fake_maps_compiled == 1
  stored = os.listdir(cache_dir)
  assert len(stored) == 1
  # Another actor with the same seed draws the same episode seeds: its map
  # comes from the shared directory.
  other = dmlab30.make("explore_goal_locations_small", seed=4,
                       level_cache=dmlab30.LevelCache(cache_dir))
  other.reset()
  other_lab = fake_lab.fake_created[-1]
  assert other_lab.fake_maps_compiled == 0
  assert [e[0] for e in other_lab.fake_log] == ["map_fetched", "reset"]
  assert os.listdir(cache_dir) == stored


def test_fetch_and_write(tmp_path):
  cache = dmlab30.LevelCache(tmp_path / "cache")
  map_file = tmp_path / "map.pk3"
  map_file.write_bytes(b"compiled map")
  out = tmp_path / "out.pk3"
  assert cache.fetch("abc", str(out)) is False
  assert not out.exists()
  cache.write("abc", str(map_file))
  assert cache.fetch("abc", str(out)) is True
  assert out.read_bytes() == b"compiled map"
  # Writing a key that is already stored keeps the first map.
  map_file.write_bytes(b"other")
  cache.write("abc", str(map_file))
  assert (tmp_path / "cache" / "abc").read_bytes() == b"compiled map"
  # No temporary files are left behind.
  assert os.listdir(tmp_path / "cache") == ["abc"]


def test_keys_must_be_plain_file_names(tmp_path):
  cache = dmlab30.LevelCache(tmp_path / "cache")
  with pytest.raises(ValueError, match="plain file name"):
    cache.fetch("../escape", str(tmp_path / "x.pk3"))
