"""DMLab-30 on DeepMind Lab's real engine, where it is installed.

The fake (`impala_tf.testing.fake_deepmind_lab`) stands in for the engine
everywhere else, so it is held to the real one here: the same calls go to
both and the test fails where they disagree. The engine also shares this
process with TensorFlow (tests/conftest.py imports it first), which crashed
its first `reset()` until `dmlab30.engine.bind_engine_libraries`.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import dmlab30
from dmlab30 import availability
from dmlab30 import engine as engine_lib
from impala_tf.testing import fake_deepmind_lab
from impala_tf.testing import real_engine

pytestmark = pytest.mark.skipif(real_engine.reason() is not None,
                                reason=str(real_engine.reason()))

PREFIX = "contributed/dmlab30/"
LEVEL = PREFIX + "rooms_collect_good_objects_train"
TEST_LEVEL = PREFIX + "rooms_collect_good_objects_test"
LANGUAGE_LEVEL = PREFIX + "language_select_described_object"
SIZE = {"width": "96", "height": "72"}
FORWARD = np.array([0, 0, 0, 1, 0, 0, 0], np.intc)


def _gist(error: Exception) -> str:
  """The part of an error message that does not name files or values."""
  text = str(error)
  for stop in (' - "', "'", "("):
    text = text.split(stop)[0]
  return text.strip()


def _outcome(call):
  """What a call does: ("returns", type name) or ("raises", type, gist)."""
  try:
    value = call()
  except (TypeError, ValueError, RuntimeError) as e:
    return ("raises", type(e).__name__, _gist(e))
  return ("returns", type(value).__name__)


def _first_frame(engine, level, config, seed):
  lab = engine.Lab(level, ["RGB_INTERLEAVED"], dict(SIZE, **config))
  lab.reset(seed=seed)
  frame = lab.observations()["RGB_INTERLEAVED"].copy()
  lab.close()
  return frame


def _behaviour(engine) -> dict:
  """What `engine` (the real module or the fake) does for the calls the
  adapter makes and the misuse it must not make."""
  seen = {"version": type(engine.version()).__name__}
  make = lambda *a, **k: lambda: engine.Lab(*a, **k)
  seen["constructor misuse"] = [
      _outcome(make(LEVEL, ("RGB_INTERLEAVED",))),
      _outcome(make(LEVEL, ["RGB_INTERLEAVED"], {"width": 96})),
      _outcome(make(LEVEL, ["RGB_INTERLEAVED"], {}, renderer="gpu")),
      _outcome(make(LEVEL, ["RGB_INTERLACED_X"])),
      _outcome(make(PREFIX + "no_such_level", ["RGB_INTERLEAVED"])),
      _outcome(make(TEST_LEVEL, ["RGB_INTERLEAVED"], dict(SIZE))),
  ]
  lab = engine.Lab(LEVEL, ["RGB_INTERLEAVED", "INSTR"], dict(SIZE))
  seen["spec"] = sorted((s["name"], tuple(s["shape"]), s["dtype"])
                        for s in lab.observation_spec()
                        if s["name"] in ("RGB_INTERLEAVED", "INSTR"))
  seen["action spec"] = lab.action_spec()
  seen["before reset"] = [lab.is_running(), _outcome(lambda: lab.step(FORWARD)),
                          _outcome(lab.observations)]
  seen["numpy seed"] = _outcome(lambda: lab.reset(seed=np.int64(3)))
  seen["reset"] = lab.reset(seed=3)
  observation = lab.observations()
  frame = observation["RGB_INTERLEAVED"]
  seen["observation"] = (type(frame).__name__, frame.shape, frame.dtype.name,
                         repr(observation["INSTR"]))
  seen["step misuse"] = [
      _outcome(lambda: lab.step([0, 0, 0, 1, 0, 0, 0])),
      _outcome(lambda: lab.step(np.zeros(9, np.intc))),
      _outcome(lambda: lab.step(FORWARD.astype(np.int64)))]
  rewards = [lab.step(FORWARD, num_steps=4) for _ in range(2)]
  seen["rewards"] = [type(r).__name__ for r in rewards]
  seen["frames after two steps"] = lab.num_steps()
  steps = 2
  while lab.is_running() and steps < 5_000:
    lab.step(FORWARD, num_steps=4)
    steps += 1
  seen["agent steps in an episode"] = steps
  seen["after the episode"] = [
      lab.is_running(), _outcome(lab.observations),
      _outcome(lambda: lab.step(FORWARD)), _outcome(lab.events)]
  seen["reset after the end"] = [lab.reset(seed=4), lab.is_running()]
  seen["close"] = [lab.close(), lab.close(), lab.is_running()]
  seen["seeds"] = [
      bool((_first_frame(engine, LEVEL, {}, 11) ==
            _first_frame(engine, LEVEL, {}, 11)).all()),
      bool((_first_frame(engine, LEVEL, {}, 11) !=
            _first_frame(engine, LEVEL, {}, 12)).any())]
  language = engine.Lab(LANGUAGE_LEVEL, ["INSTR"], dict(SIZE))
  instructions = []
  for seed in (1, 2, 3):
    language.reset(seed=seed)
    instructions.append(language.observations()["INSTR"])
  language.close()
  seen["instructions"] = ([type(i).__name__ for i in instructions],
                          all(instructions), len(set(instructions)) > 1)
  held_out = {"allowHoldOutLevels": "true"}
  mixed = dict(held_out, mixerSeed=str(dmlab30.TEST_MIXER_SEED))
  seen["test level"] = [
      bool((_first_frame(engine, TEST_LEVEL, mixed, 5) ==
            _first_frame(engine, TEST_LEVEL, mixed, 5)).all()),
      bool((_first_frame(engine, TEST_LEVEL, mixed, 5) !=
            _first_frame(engine, TEST_LEVEL, held_out, 5)).any())]
  return seen


def test_the_fake_engine_does_what_the_real_one_does(real_lab, monkeypatch):
  # The fake is called directly, not installed as `deepmind_lab`: the real
  # extension looks itself up in sys.modules for its runfiles.
  monkeypatch.setattr(fake_deepmind_lab, "fake_created", [])
  engine_lib.bind_engine_libraries(real_lab)
  real = _behaviour(real_lab)
  fake = _behaviour(fake_deepmind_lab)
  differ = {key: {"real": real[key], "fake": fake.get(key)}
            for key in real if real[key] != fake.get(key)}
  assert not differ, differ
  # What both must do, whatever they agree on.
  assert real["observation"] == ("ndarray", (72, 96, 3), "uint8", "''")
  assert real["instructions"][1:] == (True, True)
  assert real["seeds"] == [True, True] and real["test level"] == [True, True]


def _frames_checksum(level: str, seed: int, steps: int) -> int:
  env = dmlab30.make(level, seed=seed)
  frames = [env.reset().observation["frame"]]
  frames += [env.step(i % 9).observation["frame"] for i in range(steps)]
  env.close()
  return int(np.stack(frames).astype(np.int64).sum())


_WITHOUT_TENSORFLOW = """
import sys
import numpy as np
import dmlab30
assert "tensorflow" not in sys.modules
env = dmlab30.make(sys.argv[1], seed=int(sys.argv[2]))
frames = [env.reset().observation["frame"]]
frames += [env.step(i % 9).observation["frame"] for i in range(int(sys.argv[3]))]
print(int(np.stack(frames).astype(np.int64).sum()))
"""


def test_the_engine_steps_beside_tensorflow_and_renders_the_same(
    real_lab, tmp_path):
  del real_lab
  # This process imported TensorFlow before any engine (tests/conftest.py).
  assert "tensorflow" in sys.modules
  here = _frames_checksum("rooms_collect_good_objects", 3, 60)
  alone = subprocess.run(
      [sys.executable, "-c", _WITHOUT_TENSORFLOW, "rooms_collect_good_objects",
       "3", "60"], capture_output=True, text=True, timeout=120, check=True,
      env=dict(os.environ, TMPDIR=str(tmp_path)))
  assert here == int(alone.stdout.split()[-1])


_TENSORFLOW_FIRST = """
from impala_tf.runtime import tf_startup
tf_startup.import_tensorflow(without_keras=True)
import dmlab30
env = dmlab30.make("rooms_collect_good_objects", seed=1)
env.reset()
print("reset done", flush=True)
"""


def test_without_the_binding_tensorflow_first_crashes_the_engine(tmp_path):
  # The control for the test above: the crash the binding prevents (if a
  # build stops crashing here, the binding may no longer be needed).
  env = dict(os.environ, TMPDIR=str(tmp_path),
             IMPALA_TF_FAULTS=engine_lib.UNBOUND_FAULT)
  crashed = subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                            _TENSORFLOW_FIRST], capture_output=True,
                           text=True, timeout=180, env=env)
  assert crashed.returncode == -11, crashed.stdout + crashed.stderr
  assert "reset done" not in crashed.stdout
  env.pop("IMPALA_TF_FAULTS")
  fixed = subprocess.run([sys.executable, "-c", _TENSORFLOW_FIRST],
                         capture_output=True, text=True, timeout=180, env=env)
  assert fixed.returncode == 0 and "reset done" in fixed.stdout, fixed.stderr


def test_a_level_that_needs_the_psychlab_images_is_found_before_a_run(
    real_lab, monkeypatch, tmp_path):
  del real_lab
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  levels = ["rooms_watermaze", "psychlab_continuous_recognition"]
  unavailable = availability.unavailable_levels(levels)
  assert list(unavailable) == ["psychlab_continuous_recognition"]
  assert "Brady et al. (2008)" in unavailable[
      "psychlab_continuous_recognition"]
  assert "--dataset_path" in unavailable["psychlab_continuous_recognition"]
  # Kept per engine build: asked again, nothing is loaded.
  def no_probe(*args, **kwargs):
    raise AssertionError(f"probed again: {args}")
  monkeypatch.setattr(availability.subprocess, "run", no_probe)
  assert availability.unavailable_levels(levels) == unavailable
  # The held-out test scripts are asked about separately.
  monkeypatch.undo()
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  assert availability.unavailable_levels(["rooms_watermaze"], "test") == {}


def test_an_exported_policy_acts_on_real_observations_without_this_project(
    real_lab, tmp_path):
  del real_lab
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import networks  # pylint: disable=g-import-not-at-top
  from impala_tf.config import experiment  # pylint: disable=g-import-not-at-top
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  from impala_tf.records import saved_policy  # pylint: disable=g-import-not-at-top
  from impala_tf.testing import standalone_policy  # pylint: disable=g-import-not-at-top
  # A language level: its instruction reaches the policy's encoder.
  exp = experiment.build("dmlab30", ["language_select_described_object"],
                         presets.DMLAB_SINGLE_TASK.replace(torso="shallow"))
  tf.random.set_seed(5)
  network = exp.make_network()
  network(networks.dummy_input(exp.observation_spec), network.initial_state(1))
  directory = str(tmp_path / "policy")
  saved_policy.export_policy(exp, network.trainable_variables, 0, directory)
  env = dmlab30.make("language_select_described_object", seed=2)
  timesteps = [env.reset()]
  timesteps += [env.step(action) for action in (0, 0, 4)]
  env.close()
  assert timesteps[0].observation["instruction"].any()  # Words, not padding.
  steps = [dict({name: timestep.observation[name][None]
                 for name in exp.observation_spec},
                prev_action=np.array([0 if t == 0 else (0, 0, 4)[t - 1]],
                                     np.int32),
                prev_reward=np.array([timestep.reward or 0.0], np.float32),
                step_type=np.array([int(timestep.step_type)], np.int32))
           for t, timestep in enumerate(timesteps)]
  live = standalone_policy.live_outputs(network, exp, steps, 1)
  saved = standalone_policy.run_without_project(tmp_path, directory, steps, 1)
  for t, expected in enumerate(live):
    for name, value in expected.items():
      np.testing.assert_allclose(saved[f"{t}/{name}"], value, atol=1e-5,
                                 err_msg=f"step {t}, {name}")
  assert str(saved["suite"]) == "dmlab30"
