"""The fault-injection run, in its short form: every fault survived, the
budget reached, nothing non-finite or lost."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_a_short_chaos_run_survives_every_fault(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.chaos", "--total_frames=250000",
       f"--output={tmp_path}", "--seed=1"],
      capture_output=True, text=True, timeout=900)
  report = json.loads((tmp_path / "chaos.json").read_text())
  assert result.returncode == 0, (result.stdout + "\n" +
                                  (tmp_path / "output.log").read_text())
  assert all(report["checks"].values()), report["checks"]
  injected = {f["name"]: f["injected"] for f in report["faults"]}
  assert injected == {"actor SIGKILL": 2, "actor SIGSTOP": 2,
                      "learner SIGKILL": 1, "checkpoint writes fail": 1,
                      "non-finite loss": 1}
  assert report["checkpoints_lost"] == 0
  assert "| fault | injected | survived | detail |" in result.stdout
