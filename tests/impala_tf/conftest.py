"""Fixtures shared by the tests of the package's run tools."""

import pytest

from impala_tf.config import experiment
from impala_tf.roles import threads
from impala_tf.config import presets

CATCH_RUN_FRAMES = 96_000


@pytest.fixture(scope="session")
def trained_catch_run(tmp_path_factory):
  """(run directory, progress lines) of a Catch run trained in threads to
  its preset's budget; it ends with a checkpoint, summaries, result.json
  and the exported policy."""
  logdir = tmp_path_factory.mktemp("catch_run")
  lines = []
  # 96,000 frames (the preset's 128,000 less a quarter, to save time):
  # Catch's default runs pass 0.9 by 60,000 (docs/results.md).
  config = presets.CATCH.replace(total_frames=CATCH_RUN_FRAMES)
  result = threads.train_in_process(
      experiment.build("catch", config=config), num_actors=2,
      logdir=str(logdir), log=lines.append, log_interval_s=2.0)
  assert result.mean_returns["catch"] >= 0.9, lines
  return logdir, lines
