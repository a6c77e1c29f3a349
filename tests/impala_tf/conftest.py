"""Fixtures shared by the tests of the package's run tools."""

import pytest

from impala_tf import experiment
from impala_tf import in_process


@pytest.fixture(scope="session")
def trained_catch_run(tmp_path_factory):
  """(run directory, progress lines) of a Catch run trained in threads to
  its preset's budget; it ends with a checkpoint, summaries, result.json
  and the exported policy."""
  logdir = tmp_path_factory.mktemp("catch_run")
  lines = []
  result = in_process.train_in_process(
      experiment.build("catch"), num_actors=2, logdir=str(logdir),
      log=lines.append, log_interval_s=2.0)
  assert result.mean_returns["catch"] >= 0.9, lines
  return logdir, lines
