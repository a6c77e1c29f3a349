"""`impala_tf.evaluate`: the suite's protocol on an exported policy, and a
report whose files agree with the printed lines."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.records import evaluation
from impala_tf.config import experiment
from impala_tf.agent import networks
from impala_tf.config import presets
from impala_tf.records import saved_policy
from impala_tf import suites


@pytest.mark.slow
def test_trained_catch_policy_scores_near_one(trained_catch_run, tmp_path):
  run, _ = trained_catch_run
  output = tmp_path / "new" / "eval"  # A directory that does not exist yet.
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.evaluate", f"--logdir={run}",
       "--episodes=60", "--num_envs=4", f"--output={output}"],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  report = json.loads((output / "eval.json").read_text())
  catch = report["levels"]["catch"]
  assert catch["episodes"] == 60 and len(catch["returns"]) == 60
  assert catch["mean"] >= 0.9
  assert catch["normalized_score"] is None  # Catch has no references.
  # The printed line and the CSV say the same as the JSON.
  (line,) = [l for l in result.stdout.splitlines() if l.startswith("catch:")
             and "over" in l]
  assert line == evaluation.level_line("catch", catch)
  rows = list(csv.DictReader((output / "eval.csv").open()))
  assert rows[0]["level"] == "catch"
  assert float(rows[0]["mean_return"]) == pytest.approx(catch["mean"])
  assert int(rows[0]["episodes"]) == 60


def _untrained_pong_policy(directory):
  exp = experiment.build("atari57", ["pong"], presets.ATARI)
  tf.random.set_seed(0)
  network = exp.make_network()
  network(networks.dummy_input(exp.observation_spec), network.initial_state(1))
  saved_policy.export_policy(exp, network.trainable_variables, 0, directory)


def test_untrained_pong_policy_scores_like_random_play(tmp_path):
  policy_dir = tmp_path / "run" / "saved_model"
  _untrained_pong_policy(str(policy_dir))
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.evaluate", f"--policy={policy_dir}",
       "--episodes=4", "--num_envs=4"],
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  # Written next to the policy.
  report = json.loads((tmp_path / "run" / "eval.json").read_text())
  pong = report["levels"]["pong"]
  assert pong["episodes"] == 4
  # Whole games (21 points to the opponent or fewer), near the reference
  # random score of -20.7, so a normalised score near 0 %.
  assert all(-21 <= r <= -15 for r in pong["returns"])
  assert -5 <= pong["normalized_score"] <= 15
  assert report["suite_scores"]["mean"] == pytest.approx(
      pong["normalized_score"])
  printed = result.stdout.splitlines()
  assert evaluation.level_line("pong", pong) in printed
  assert evaluation.suite_line("atari57", report["suite_scores"]) in printed
  rows = {row["level"]: row for row in
          csv.DictReader((tmp_path / "run" / "eval.csv").open())}
  assert float(rows["pong"]["normalized_score_percent"]) == pytest.approx(
      pong["normalized_score"])
  assert float(rows["suite_capped_mean"]["normalized_score_percent"]) == (
      pytest.approx(report["suite_scores"]["capped_mean"]))
  assert re.search(r"pong: 4/4 episodes \| mean so far -?\d", result.stdout)


def test_levels_with_another_action_set_are_refused(tmp_path):
  _untrained_pong_policy(str(tmp_path / "policy"))
  policy = evaluation.Policy(str(tmp_path / "policy"))
  with pytest.raises(evaluation.EvaluationError,
                     match="The policy has 6 actions but breakout has 4"):
    evaluation.evaluate(policy, ["breakout"], episodes=1, num_envs=1,
                      show_progress=False)


class _UniformCatchPolicy:
  """Plays Catch uniformly at random through `evaluation.Policy`'s methods."""

  path = "uniform"
  metadata = {"suite": "catch", "levels": ["catch"], "num_actions": 3,
              "frames_trained": 0, "config": {}}

  def __init__(self):
    self._rng = np.random.default_rng(0)

  def initial_state(self, batch_size):
    del batch_size
    return {}

  def step(self, observation, prev_action, prev_reward, step_type, state,
           greedy):
    del observation, prev_reward, step_type, greedy
    return self._rng.integers(0, 3, len(prev_action)).astype(np.int32), state


def test_the_number_of_episodes_comes_from_the_suite_unless_given(
    monkeypatch):
  # The paper's protocols: 500 test episodes per DMLab-30 level, 200 per
  # Atari game; Catch plays Atari's number.
  assert suites.get("dmlab30").eval_episodes == 500
  assert suites.get("atari57").eval_episodes == 200
  assert suites.get("catch").eval_episodes == 200
  monkeypatch.setattr(type(suites.get("catch")), "eval_episodes", 12)
  report = evaluation.evaluate(_UniformCatchPolicy(), num_envs=4,
                             show_progress=False, log=lambda line: None)
  assert report["episodes_per_level"] == 12
  assert len(report["levels"]["catch"]["returns"]) == 12
  given = evaluation.evaluate(_UniformCatchPolicy(), episodes=5, num_envs=4,
                            show_progress=False, log=lambda line: None)
  assert given["levels"]["catch"]["episodes"] == 5
  with pytest.raises(evaluation.EvaluationError, match="at least 1"):
    evaluation.evaluate(_UniformCatchPolicy(), episodes=0)


def test_quotas_split_episodes_evenly_over_environments():
  np.testing.assert_array_equal(evaluation._quotas(10, 4), [3, 3, 2, 2])  # pylint: disable=protected-access
  np.testing.assert_array_equal(evaluation._quotas(3, 3), [1, 1, 1])  # pylint: disable=protected-access


def test_videos_of_a_trained_policy_are_playable_and_as_long_as_their_episodes(
    trained_catch_run, tmp_path):
  run, _ = trained_catch_run
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.evaluate", f"--logdir={run}",
       "--episodes=4", "--num_envs=2", "--video=2",
       f"--output={tmp_path}"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  from impala_tf.records import video  # pylint: disable=g-import-not-at-top
  report = json.loads((tmp_path / "eval.json").read_text())
  videos = report["levels"]["catch"]["videos"]
  assert [v["episode"] for v in videos] == [1, 2]
  files = sorted((tmp_path / "videos").glob("*.mp4"))
  assert len(files) == 2
  for entry in videos:
    path = entry["path"]
    assert os.path.basename(path) == (
        f"catch-episode{entry['episode']}-return{entry['return']:g}.mp4")
    assert entry["return"] in report["levels"]["catch"]["returns"]
    # One frame per step the policy took in that episode.
    assert video.count_frames(path) == entry["length"] == entry["frames"]
    assert entry["length"] > 1


_WITHOUT_IMAGEIO = """
import importlib.abc, runpy, sys
class _Missing(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("imageio", "imageio_ffmpeg"):
      raise ImportError(f"No module named {name!r}")
    return None
sys.meta_path.insert(0, _Missing())
sys.argv = ["evaluate"] + sys.argv[1:]
runpy.run_module("impala_tf.evaluate", run_name="__main__")
"""


def test_a_video_without_the_encoder_is_one_line_naming_the_extra(
    trained_catch_run, tmp_path):
  run, _ = trained_catch_run
  result = subprocess.run(
      [sys.executable, "-c", _WITHOUT_IMAGEIO, f"--logdir={run}", "--video=1",
       f"--output={tmp_path}"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-3000:]
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith("impala_tf.evaluate: error: --video needs the video "
                         "encoder"), line
  assert "pip install 'impala_tf[video]'" in line
  assert not (tmp_path / "eval.json").exists()
