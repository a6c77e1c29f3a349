"""Checkpoints: what a restore brings back, and the fallback when the
newest cannot be read."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.config import experiment
from impala_tf.roles import threads
from impala_tf.agent import learner as learner_lib
from impala_tf.config import presets
from impala_tf.records import run_dir
from impala_tf.learner_loop import checkpointing


def _catch(total_frames):
  config = presets.CATCH.replace(batch_size=8, unroll_length=5,
                                 total_frames=total_frames)
  return experiment.build("catch", config=config, envs_per_actor=4)


def _new_learner(exp):
  return learner_lib.Learner(exp.config, exp.make_network,
                             exp.observation_spec)


def _checkpoint(learner):
  return tf.train.Checkpoint(
      network=learner.network, optimizer=learner.optimizer,
      num_updates=learner.num_updates, num_frames=learner.num_frames)


def test_restore_brings_back_weights_slots_and_counters(tmp_path):
  exp = _catch(6 * 8 * 5)
  threads.train_in_process(exp, num_actors=1, logdir=str(tmp_path),
                              log=lambda _: None)
  directory = str(tmp_path / run_dir.CHECKPOINT_DIR)
  saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(directory))
  learner = _new_learner(exp)
  path = checkpointing.restore_newest(_checkpoint(learner), directory,
                                      log=lambda _: None)
  assert path.endswith("ckpt-6")
  assert int(learner.num_updates.numpy()) == 6
  assert int(learner.num_frames.numpy()) == 6 * 8 * 5
  names = saved.get_variable_to_shape_map()
  slots = [n for n in names if n.startswith("optimizer/") and
           n.endswith(".ATTRIBUTES/VARIABLE_VALUE")]
  assert len(slots) == len(learner.variables)  # One mean square each.
  for index, variable in enumerate(learner.optimizer._mean_square):  # pylint: disable=protected-access
    key = f"optimizer/_mean_square/{index}/.ATTRIBUTES/VARIABLE_VALUE"
    np.testing.assert_array_equal(variable.numpy(), saved.get_tensor(key))
  # Trained: the mean squares moved away from their initial ones.
  assert any((v.numpy() != 1.0).any()
             for v in learner.optimizer._mean_square)  # pylint: disable=protected-access
  network_keys = sorted(n for n in names if n.startswith("network/"))
  assert len(network_keys) == len(learner.variables)


def test_a_resumed_run_counts_the_games_before_its_stop(tmp_path):
  first = threads.train_in_process(_catch(6 * 8 * 5), num_actors=1,
                                   logdir=str(tmp_path), log=lambda _: None)
  lines = []
  resumed = threads.train_in_process(_catch(8 * 8 * 5), num_actors=1,
                                     logdir=str(tmp_path), log=lines.append)
  assert any("Restored" in line for line in lines)
  # Two more updates play fewer games than the first six: the count
  # (and the window averaged) goes on from the first sitting's.
  assert first.episodes["catch"] > 0
  assert resumed.episodes["catch"] > first.episodes["catch"]


def _two_checkpoints(tmp_path):
  exp = _catch(1000)
  learner = _new_learner(exp)
  checkpoint = _checkpoint(learner)
  manager = tf.train.CheckpointManager(checkpoint, str(tmp_path), 3)
  first_weights = [v.numpy() for v in learner.variables]
  learner.num_frames.assign(100)
  manager.save(checkpoint_number=1)
  for v in learner.variables:
    v.assign(v + 1.0)
  learner.num_frames.assign(200)
  newest = manager.save(checkpoint_number=2)
  return exp, first_weights, newest


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path):
  exp, first_weights, newest = _two_checkpoints(tmp_path)
  data = tf.io.gfile.glob(newest + ".data-*")
  with open(data[0], "r+b") as f:
    f.truncate(os.path.getsize(data[0]) // 2)
  learner = _new_learner(exp)
  lines = []
  path = checkpointing.restore_newest(_checkpoint(learner), str(tmp_path),
                                      log=lines.append)
  assert path.endswith("ckpt-1")
  assert "Could not read checkpoint" in lines[0] and "ckpt-2" in lines[0]
  assert "Fell back to" in lines[-1]
  assert int(learner.num_frames.numpy()) == 100
  for value, expected in zip(learner.variables, first_weights):
    np.testing.assert_array_equal(value.numpy(), expected)


def test_no_readable_checkpoint_is_an_error_that_deletes_nothing(tmp_path):
  exp, _, _ = _two_checkpoints(tmp_path)
  for path in tf.io.gfile.glob(str(tmp_path / "ckpt-*.data-*")):
    with open(path, "wb") as f:
      f.write(b"not a checkpoint")
  before = sorted(os.listdir(tmp_path))
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"None of the 2 checkpoints .* Nothing was deleted"):
    checkpointing.restore_newest(_checkpoint(_new_learner(exp)),
                                 str(tmp_path), log=lambda _: None)
  assert sorted(os.listdir(tmp_path)) == before


# Runs as root of a user and mount namespace of its own (`unshare`), where
# it mounts a small tmpfs: a real full disk, whatever the machine's.
_FULL_DISK = r"""
import os, subprocess, sys
directory = sys.argv[1]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", directory],
               check=True)
import tensorflow as tf
from impala_tf.config import experiment
from impala_tf.config import presets
from impala_tf.agent import learner as learner_lib
from impala_tf.learner_loop import checkpointing
from impala_tf.learner_loop import episodes

class Loop:
  def __init__(self, learner):
    self.learner, self.counters, self.error = learner, {}, None
    self.episodes = episodes.EpisodeStats(["catch"])
    self.start_time, self.lines = 0.0, []
  num_updates = property(lambda self: int(self.learner.num_updates.numpy()))
  num_frames = property(lambda self: int(self.learner.num_frames.numpy()))
  def log(self, line):
    self.lines.append(line)

exp = experiment.build("catch")
learner = learner_lib.Learner(exp.config, exp.make_network,
                              exp.observation_spec)
loop = Loop(learner)
saver = checkpointing.Checkpointer(directory, interval_s=1)
saver.start(loop)
learner.num_updates.assign(1)
first = saver.save(loop)
assert first and first.endswith("ckpt-1"), first
ballast = os.path.join(directory, "ballast")
subprocess.run(["sh", "-c", f"cat /dev/zero > {ballast}"])  # Fills it.
learner.num_updates.assign(2)
assert saver.save(loop) is None
line = loop.lines[-1]
assert line.startswith("Could not save checkpoint 2 (") and line.endswith(
    f"the newest good checkpoint is {first}. Trying again in 1 s."), line
left = sorted(os.listdir(directory))
assert not [f for f in left if f.startswith("ckpt-2")], left
try:
  saver.save(loop, final=True)
  raise AssertionError("the final save did not fail")
except checkpointing.CheckpointError as e:
  assert str(e).startswith("Could not save checkpoint 2 ("), e
os.remove(ballast)
learner.num_updates.assign(3)
assert saver.save(loop).endswith("ckpt-3")
assert tf.train.latest_checkpoint(directory).endswith("ckpt-3")
tf.train.load_checkpoint(first)  # The earlier one is intact.
print("ok")
"""


def test_a_full_disk_fails_a_save_in_one_line_and_leaves_no_partial_files(
    tmp_path):
  probe = subprocess.run(["unshare", "--mount", "--map-root-user", "true"],
                         capture_output=True)
  if probe.returncode != 0:
    pytest.skip("this machine forbids user and mount namespaces, so no "
                "tmpfs can be mounted to fill; the fault-hook test in "
                "test_launch.py covers the same path")
  directory = tmp_path / "checkpoints"
  directory.mkdir()
  result = subprocess.run(
      ["unshare", "--mount", "--map-root-user", sys.executable, "-c",
       _FULL_DISK, str(directory)], capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0 and result.stdout.strip() == "ok", (
      result.stdout + result.stderr[-3000:])
