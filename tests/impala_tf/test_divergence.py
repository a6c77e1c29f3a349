"""The divergence guard: non-finite updates are skipped and counted, and a
run whose updates stay non-finite ends with one line, every checkpoint
finite."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.acting import actor as actor_lib
from impala_tf.acting import envs
from impala_tf.config import errors
from impala_tf.learner_loop import base
from impala_tf.learner_loop import divergence
from impala_tf.suites import catch


class _Loop:
  """The attributes of a running loop the guard reads."""

  def __init__(self):
    self.counters = {}
    self.num_updates = 7
    self.experiment = types.SimpleNamespace(
        config=types.SimpleNamespace(learning_rate=1e3, max_grad_norm=40.0))

  def part(self, kind):
    del kind
    return None


def _update(finite, pg=0.5):
  logs = {"finite": tf.constant(finite), "pg_loss": tf.constant(pg),
          "baseline_loss": tf.constant(float("nan") if not finite else 1.0),
          "entropy_loss": tf.constant(-1.0),
          "grad_norm": tf.constant(float("inf") if not finite else 2.0)}
  return base.Update({}, logs, np.zeros(2, np.int64), np.zeros(2, bool))


def test_guard_counts_skips_and_stops_after_a_streak():
  guard = divergence.DivergenceGuard(max_consecutive=3)
  loop = _Loop()
  guard.start(loop)
  guard.after_update(loop, _update(False))
  guard.after_update(loop, _update(False))
  guard.after_update(loop, _update(True))  # A good update ends the streak.
  assert loop.counters["nonfinite_updates"] == 2
  guard.after_update(loop, _update(False))
  guard.after_update(loop, _update(False))
  with pytest.raises(errors.DivergenceError) as error:
    guard.after_update(loop, _update(False))
  message = str(error.value)
  assert message.startswith("The run diverged: 3 updates in a row from "
                            "update 8 on had a non-finite loss or gradient "
                            "(baseline_loss nan, grad_norm inf first).")
  assert "the newest checkpoint is none" in message
  assert "--learning_rate (now 1000)" in message
  assert loop.counters["nonfinite_updates"] == 5


class _NanNetwork(tf.Module):
  """A policy whose logits are NaN, as a diverged network's are."""
  use_lstm = False
  use_instruction = False

  def initial_state(self, batch_size):
    del batch_size
    return ()

  def __call__(self, inputs, state):
    batch = tf.shape(inputs.prev_action)[0]
    logits = tf.fill([batch, catch.NUM_ACTIONS], float("nan"))
    return types.SimpleNamespace(policy_logits=logits,
                                 baseline=tf.zeros([batch])), state


def test_an_actor_with_a_broken_policy_plays_valid_actions_and_counts_them():
  env = envs.DmEnvBatch([catch.Catch(seed=i) for i in range(3)],
                        catch.NUM_ACTIONS)
  actor = actor_lib.Actor(env, _NanNetwork(), unroll_length=4)
  trajectory = actor.unroll()
  assert actor.broken_policy_steps == 3 * 5
  assert (trajectory["prev_action"][:, 1:] == 0).all()
  assert np.isnan(trajectory["behaviour_logits"]).all()


# Updates a resumed run with a learning rate of 1e3 may take before it stops:
# the weights overflow within a few, then five non-finite updates in a row end
# it; its 10M-frame budget would be 15,625 updates (batch 32 x unroll 20).
_PROMPT_STOP_UPDATES = 50


@pytest.mark.slow
def test_a_diverging_run_stops_with_one_line_and_finite_checkpoints(
    tmp_path, cpu_hogs):
  logdir = tmp_path / "run"
  common = [sys.executable, "-m", "impala_tf.launch", "--suite=catch",
            "--num_actors=2", f"--logdir={logdir}", "--log_interval_s=1"]
  # A few good checkpoints first (in one process, to save time).
  good = subprocess.run(common + ["--total_frames=6400", "--run_mode=threads"],
                        capture_output=True, text=True, timeout=300)
  assert good.returncode == 0, good.stdout + good.stderr
  checkpoints = str(logdir / "checkpoints")
  saved = tf.train.latest_checkpoint(checkpoints)
  updates_before = json.loads((logdir / "result.json").read_text())[
      "num_updates"]
  cpu_hogs()  # Both cores busy: timing must not decide how it ends.
  # The same run resumed with a learning rate that blows the weights up
  # within a few updates.
  bad = subprocess.run(common + ["--total_frames=10000000",
                                 "--learning_rate=1e3"],
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 1, bad.stdout + bad.stderr
  # It stopped within a few updates of diverging, not at its frame budget
  # (counted in updates: the wall clock depends on the machine's load).
  record = json.loads((logdir / "result.json").read_text())
  assert record["num_updates"] - updates_before <= _PROMPT_STOP_UPDATES, (
      updates_before, record["num_updates"])
  errors = [l for l in bad.stderr.splitlines() if l.strip()]
  assert len(errors) == 1 and errors[0].startswith(
      "impala_tf.launch: error: The run diverged: 5 updates in a row"), (
          bad.stderr)
  assert "Traceback" not in bad.stdout + bad.stderr
  assert record["status"] == "diverged"
  # Every checkpoint left is finite; the newest is named in the line.
  newest = tf.train.latest_checkpoint(checkpoints)
  assert newest in errors[0] or saved in errors[0]
  for path in tf.train.get_checkpoint_state(
      checkpoints).all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      value = np.asarray(reader.get_tensor(name))
      if np.issubdtype(value.dtype, np.floating):
        assert np.isfinite(value).all(), (path, name)
  assert os.path.exists(logdir / "config.json")
