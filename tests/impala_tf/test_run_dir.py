"""The run directory: what config.json records and which changes a resumed
run may make."""

import json

import pytest

from impala_tf.config import experiment
from impala_tf.config import presets
from impala_tf.records import run_dir


def test_config_json_records_the_experiment(tmp_path):
  exp = experiment.build("atari57", ["pong"])
  run_dir.save_config(str(tmp_path), exp)
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["suite"] == "atari57" and saved["levels"] == ["pong"]
  assert saved["observation_spec"] == {"frame": [[84, 84, 4], "uint8"]}
  assert saved["config"]["learning_rate"] == presets.ATARI.learning_rate
  assert saved["num_actions"] == 6
  rebuilt = run_dir.load_experiment(str(tmp_path))
  assert rebuilt == exp


def test_hyperparameters_may_change_on_resume_but_not_the_network(tmp_path):
  exp = experiment.build("catch")
  assert run_dir.check_resume(str(tmp_path), exp) == []  # A new run.
  run_dir.save_config(str(tmp_path), exp)
  longer = experiment.build("catch", config=presets.CATCH.replace(
      total_frames=500_000, learning_rate=1e-3))
  assert run_dir.check_resume(str(tmp_path), longer) == [
      "learning_rate: 0.01 → 0.001", "total_frames: 128000 → 500000"]
  deep_lstm = experiment.build("catch", config=presets.CATCH.replace(
      torso="deep", use_lstm=True))
  with pytest.raises(run_dir.ResumeMismatchError,
                     match="torso: shallow → deep; use_lstm: False → True"):
    run_dir.check_resume(str(tmp_path), deep_lstm)
  with pytest.raises(run_dir.ResumeMismatchError,
                     match=r"suite: catch → atari57; levels: \['catch'\] → "
                     r"\['pong'\]; num_actions: 3 → 6"):
    run_dir.check_resume(str(tmp_path), experiment.build(
        "atari57", config=presets.ATARI))


def test_a_setting_newer_than_the_saved_run_counts_as_its_default(tmp_path):
  exp = experiment.build("catch")
  run_dir.save_config(str(tmp_path), exp)
  saved = json.loads((tmp_path / "config.json").read_text())
  del saved["config"]["normalize_advantages"]  # As saved before it existed.
  (tmp_path / "config.json").write_text(json.dumps(saved))
  assert run_dir.check_resume(str(tmp_path), exp) == []
  turned_on = experiment.build("catch", config=presets.CATCH.replace(
      normalize_advantages=True))
  assert run_dir.check_resume(str(tmp_path), turned_on) == [
      "normalize_advantages: False → True"]


def test_files_are_replaced_whole(tmp_path):
  path = str(tmp_path / "result.json")
  run_dir.write_json(path, {"a": 1})
  run_dir.write_json(path, {"a": 2})
  assert run_dir.read_json(path) == {"a": 2}
  assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
  assert run_dir.read_json(str(tmp_path / "missing.json")) is None
