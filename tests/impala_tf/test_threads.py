"""Threads mode: actors as threads learn the test environment."""

import json

import pytest

from impala_tf.config import experiment
from impala_tf.roles import threads
from impala_tf.config import presets


def test_queue_smaller_than_a_batch_is_refused():
  exp = experiment.build("catch", config=presets.CATCH.replace(batch_size=8))
  with pytest.raises(ValueError, match="batch size"):
    experiment.check_queue_capacity(exp, 4)


@pytest.mark.slow
def test_threads_learn_catch(trained_catch_run):
  # The shared fixture is this run: two actor threads, the Catch preset.
  run, lines = trained_catch_run
  result = json.loads((run / "result.json").read_text())
  config = json.loads((run / "config.json").read_text())["config"]
  assert result["num_frames"] >= config["total_frames"] > 0
  # Optimal is +1, uniformly random about -0.6.
  assert result["mean_returns"]["catch"] >= 0.9, lines
  assert result["status"] == "completed"
  assert any(line.startswith("frames ") for line in lines)
  assert (run / "checkpoints" / "checkpoint").exists()
  assert list(run.glob("events.out.tfevents.*"))


def test_atari_stacked_frames_reach_the_learner(tmp_path):
  # Pong's stacked frames travel as single frames through the queue and are
  # rebuilt by the learner's stager; a wrong layout fails the update.
  config = presets.ATARI.replace(unroll_length=5, batch_size=4,
                                 total_frames=3 * 4 * 5 * 4)
  exp = experiment.build("atari57", ["pong"], config, envs_per_actor=4)
  assert exp.frame_stack == 4
  assert "newest_frame" in exp.trajectory_specs()
  result = threads.train_in_process(exp, num_actors=1, logdir=str(tmp_path),
                                     log=lambda _: None)
  assert result.num_updates >= 3
  assert result.num_frames >= config.total_frames
