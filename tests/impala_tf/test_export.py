"""SavedModel export: signatures, metadata, and outputs equal to the live
network's in a process that cannot import this project."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import networks
from impala_tf.config import experiment
from impala_tf.config import presets
from impala_tf.records import saved_policy
from impala_tf.testing import standalone_policy

def _exported(tmp_path, exp, frames=1234):
  tf.random.set_seed(3)
  network = exp.make_network()
  network(networks.dummy_input(exp.observation_spec), network.initial_state(1))
  directory = str(tmp_path / "policy")
  saved_policy.export_policy(exp, network.trainable_variables, frames, directory)
  return network, directory


def _random_steps(exp, batch, num_steps, rng):
  steps = []
  for t in range(num_steps):
    observation = {}
    for name, (shape, dtype) in exp.observation_spec.items():
      if name == "instruction":
        value = rng.integers(0, 1001, [batch, *shape])
        value[:, 5:] = 0  # Padding after five words.
      else:
        value = rng.integers(0, 256, [batch, *shape])
      observation[name] = value.astype(dtype)
    steps.append(dict(
        observation,
        prev_action=rng.integers(0, exp.num_actions, batch).astype(np.int32),
        prev_reward=rng.normal(size=batch).astype(np.float32),
        # Episode starts: all at t = 0, one environment again at t = 2.
        step_type=np.array([0 if t == 0 or (t == 2 and b == 0) else 1
                            for b in range(batch)], np.int32)))
  return steps


@pytest.mark.parametrize("suite,levels,config", [
    # An LSTM policy with an instruction (DMLab), state carried over steps.
    ("dmlab30", ["language_select_described_object"],
     presets.DMLAB_SINGLE_TASK.replace(torso="shallow")),
    # The feed-forward Atari policy on 4 stacked frames.
    ("atari57", ["pong"], presets.ATARI),
    # The same computing its torso in bfloat16.
    ("atari57", ["pong"], presets.ATARI.replace(precision="bfloat16")),
])
def test_exported_policy_equals_the_live_network_without_this_project(
    tmp_path, suite, levels, config):
  exp = experiment.build(suite, levels, config)
  network, directory = _exported(tmp_path, exp)
  batch, num_steps = 3, 3
  steps = _random_steps(exp, batch, num_steps, np.random.default_rng(0))
  live = standalone_policy.live_outputs(network, exp, steps, batch)
  saved = standalone_policy.run_without_project(tmp_path, directory, steps, batch)
  for t, expected in enumerate(live):
    for name, value in expected.items():
      np.testing.assert_allclose(saved[f"{t}/{name}"], value, atol=1e-5,
                                 rtol=1e-5, err_msg=f"step {t} {name}")
    # greedy=True: the most likely action.
    np.testing.assert_array_equal(saved[f"{t}/action"],
                                  expected["policy_logits"].argmax(-1))
  assert str(saved["suite"]) == suite
  assert int(saved["frames_trained"]) == 1234
  assert str(saved["precision"]) == config.precision
  if config.use_lstm:
    # The state was carried: step 1 differs from a fresh start on the same
    # input, so the state mattered.
    assert not np.allclose(live[1]["core_state_c"], 0)


def test_signatures_and_metadata_follow_the_policy_saver_conventions(tmp_path):
  exp = experiment.build("atari57", ["pong"], presets.ATARI)
  _, directory = _exported(tmp_path, exp, frames=5_000)
  loaded = tf.saved_model.load(directory)
  assert set(loaded.signatures) == {"action", "serving_default",
                                    "get_initial_state", "get_metadata"}
  inputs = loaded.signatures["action"].structured_input_signature[1]
  assert inputs["frame"].shape.as_list() == [None, 84, 84, 4]
  assert inputs["frame"].dtype == tf.uint8
  assert set(inputs) == {"frame", "prev_action", "prev_reward", "step_type",
                         "greedy"}
  assert set(loaded.signatures["serving_default"].structured_input_signature[
      1]) == set(inputs)
  meta = {k: v.numpy() for k, v in
          loaded.signatures["get_metadata"]().items()}
  assert meta["suite"] == b"atari57"
  assert meta["levels"].tolist() == [b"pong"]
  assert meta["num_actions"] == 6
  assert meta["action_names"][0] == b"NOOP"
  assert meta["frames_trained"] == 5_000
  assert meta["precision"] == b"float32"
  assert json.loads(meta["observation_spec"]) == {
      "frame": [[84, 84, 4], "uint8"]}
  assert json.loads(meta["config"])["config"]["torso"] == "shallow"
  # Sampled actions are valid ones.
  frames = np.random.default_rng(1).integers(0, 256, [64, 84, 84, 4])
  out = loaded.signatures["action"](
      frame=tf.constant(frames, tf.uint8),
      prev_action=tf.zeros([64], tf.int32), prev_reward=tf.zeros([64]),
      step_type=tf.zeros([64], tf.int32), greedy=tf.constant(False))
  actions = out["action"].numpy()
  assert actions.min() >= 0 and actions.max() < 6
  assert out["policy_logits"].shape == (64, 6)

  shown = subprocess.run(
      ["saved_model_cli", "show", "--dir", directory, "--all"],
      capture_output=True, text=True, timeout=120,
      env={"TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": os.pathsep.join([os.path.dirname(sys.executable),
                                    os.environ.get("PATH", "")])})
  assert shown.returncode == 0, shown.stderr[-2000:]
  for expected in ("signature_def['action']", "signature_def['get_metadata']",
                   "signature_def['get_initial_state']",
                   "signature_def['serving_default']", "dtype: DT_UINT8",
                   "shape: (-1, 84, 84, 4)", "outputs['policy_logits']",
                   "outputs['frames_trained']"):
    assert expected in shown.stdout, expected

