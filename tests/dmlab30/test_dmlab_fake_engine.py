"""The fake deepmind_lab rejects the misuse the real module rejects.

Messages and exception types follow python/dmlab_module.c of DeepMind Lab.
"""

import numpy as np
import pytest

LEVEL = "contributed/dmlab30/explore_goal_locations_small"
FORWARD = np.array([0, 0, 0, 1, 0, 0, 0], dtype=np.intc)


@pytest.fixture
def lab(fake_lab):
  env = fake_lab.Lab(LEVEL, ["RGB_INTERLEAVED", "INSTR"],
                     {"width": "96", "height": "72"})
  yield env
  env.close()


def test_constructor_argument_types(fake_lab):
  with pytest.raises(TypeError, match="must be list, not tuple"):
    fake_lab.Lab(LEVEL, ("RGB_INTERLEAVED",))
  with pytest.raises(TypeError, match="must be dict"):
    fake_lab.Lab(LEVEL, ["RGB_INTERLEAVED"], [("width", "96")])
  with pytest.raises(TypeError, match="bad argument type"):
    fake_lab.Lab(LEVEL, ["RGB_INTERLEAVED"], {"width": 96})
  with pytest.raises(RuntimeError, match="must be \"hardware\" or \"software\""):
    fake_lab.Lab(LEVEL, ["RGB_INTERLEAVED"], {}, renderer="gpu")
  with pytest.raises(ValueError, match="Unknown observation 'RGB_INTERLACED"):
    fake_lab.Lab(LEVEL, ["RGB_INTERLACED_X"])
  with pytest.raises(RuntimeError, match="Failed to init environment"):
    fake_lab.Lab("contributed/dmlab30/no_such_level", ["RGB_INTERLEAVED"])


def test_nothing_runs_before_reset(lab):
  assert not lab.is_running()
  with pytest.raises(RuntimeError, match="wrong status to advance"):
    lab.step(FORWARD)
  with pytest.raises(RuntimeError, match="wrong status for call to observ"):
    lab.observations()
  assert lab.reset(seed=5) is True
  assert lab.is_running()


def test_step_checks_action_type_shape_and_dtype(lab):
  lab.reset(seed=1)
  with pytest.raises(TypeError, match="must be numpy.ndarray, not list"):
    lab.step([0, 0, 0, 1, 0, 0, 0])
  with pytest.raises(ValueError, match=r"action must have shape \(7\)"):
    lab.step(np.zeros(9, np.intc))
  with pytest.raises(ValueError, match=r"action must have shape \(7\)"):
    lab.step(np.zeros((1, 7), np.intc))
  with pytest.raises(ValueError, match="action must have dtype np.intc"):
    lab.step(FORWARD.astype(np.int64))
  with pytest.raises(ValueError, match="outside"):
    lab.step(np.array([0, 0, 0, 2, 0, 0, 0], np.intc))
  assert lab.step(FORWARD, num_steps=3) == 3.0
  assert lab.num_steps() == 3


def test_reset_seed_must_be_int_or_none(lab):
  with pytest.raises(ValueError, match="'seed' must be int or None, was "
                     "'int64'"):
    lab.reset(seed=np.int64(3))
  lab.reset(seed=None)
  assert lab.is_running()


def test_episode_end_stops_running_and_observations(fake_lab):
  lab = fake_lab.Lab(LEVEL, ["RGB_INTERLEAVED"], {"fakeEpisodeFrames": "6"})
  lab.reset(seed=0)
  assert lab.step(FORWARD, num_steps=4) == 4.0
  assert lab.step(FORWARD, num_steps=4) == 2.0   # only two frames were left
  assert not lab.is_running()
  assert lab.events() == []
  with pytest.raises(RuntimeError, match="wrong status"):
    lab.observations()
  with pytest.raises(RuntimeError, match="wrong status to advance"):
    lab.step(FORWARD)


def test_specs_and_observations(lab):
  assert [a["name"] for a in lab.action_spec()] == [
      "LOOK_LEFT_RIGHT_PIXELS_PER_FRAME", "LOOK_DOWN_UP_PIXELS_PER_FRAME",
      "STRAFE_LEFT_RIGHT", "MOVE_BACK_FORWARD", "FIRE", "JUMP", "CROUCH"]
  spec = {s["name"]: s for s in lab.observation_spec()}
  assert spec["RGB_INTERLEAVED"]["shape"] == (72, 96, 3)
  assert spec["INSTR"]["dtype"] is str
  lab.reset(seed=300)
  observations = lab.observations()
  assert set(observations) == {"RGB_INTERLEAVED", "INSTR"}
  assert observations["RGB_INTERLEAVED"].dtype == np.uint8
  assert observations["RGB_INTERLEAVED"][0, 0, 0] == 300 % 256
  assert observations["INSTR"] == ""


def test_close_twice_and_calls_after_close(lab):
  lab.reset(seed=1)
  assert lab.close() is True
  assert lab.close() is False
  assert not lab.is_running()
  with pytest.raises(RuntimeError, match="closed"):
    lab.reset(seed=1)


def test_level_cache_errors_propagate_from_reset(fake_lab):
  class NoWrite:
    def fetch(self, key, pk3_path):
      return False

  class FailingFetch:
    def fetch(self, key, pk3_path):
      raise OSError("cache unreachable")

    def write(self, key, pk3_path):
      raise AssertionError("write must not be reached")

  lab = fake_lab.Lab(LEVEL, [], level_cache=NoWrite())
  with pytest.raises(AttributeError, match="write"):
    lab.reset(seed=1)
  lab = fake_lab.Lab(LEVEL, [], level_cache=FailingFetch())
  with pytest.raises(OSError, match="cache unreachable"):
    lab.reset(seed=1)
