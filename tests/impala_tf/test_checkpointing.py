"""Checkpoints: what a restore brings back, and the fallback when the
newest cannot be read."""

import os

import numpy as np
import pytest
import tensorflow as tf

from impala_tf import experiment
from impala_tf import in_process
from impala_tf import learner as learner_lib
from impala_tf import presets
from impala_tf import run_dir
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
  in_process.train_in_process(exp, num_actors=1, logdir=str(tmp_path),
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
