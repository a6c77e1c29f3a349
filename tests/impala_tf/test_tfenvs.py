"""The TensorFlow environments step for step against their Python versions."""

import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest
import tensorflow as tf

from impala_tf import tfenvs
from impala_tf.suites import catch as py_catch
from impala_tf.suites import custom
from impala_tf.tfenvs import cartpole
from impala_tf.tfenvs import catch

_STEP_TYPES = {"FIRST": tfenvs.FIRST, "MID": tfenvs.MID, "LAST": tfenvs.LAST}
_SETTINGS = hypothesis.settings(max_examples=15, deadline=None)


def _step_type(timestep) -> int:
  return _STEP_TYPES[timestep.step_type.name]


@_SETTINGS
@hypothesis.given(seed=st.integers(0, 2**31 - 1),
                  actions=st.lists(st.lists(st.integers(0, 2), min_size=3,
                                            max_size=3),
                                   min_size=1, max_size=30))
def test_tf_catch_equals_the_catch_suite_step_for_step(seed, actions):
  env = catch.Catch()
  state, timestep = env.reset(tf.constant([seed, 0]), 3)
  py_envs = [py_catch.Catch(seed=0) for _ in range(3)]
  py_steps = []
  for i, py_env in enumerate(py_envs):
    py_env.reset()
    # The ball's column is drawn by each side's own random stream: the
    # Python game starts where the TensorFlow one did.
    py_env._ball_column = int(state.ball_column[i])  # pylint: disable=protected-access
    py_steps.append(py_env._frame())  # pylint: disable=protected-access
  np.testing.assert_array_equal(timestep.observation["frame"].numpy(),
                                np.stack(py_steps))
  assert (timestep.step_type.numpy() == tfenvs.FIRST).all()
  for action in actions:
    state, timestep = env.step(state, tf.constant(action))
    for i, py_env in enumerate(py_envs):
      py_timestep = py_env.step(action[i])
      if py_timestep.first():
        py_env._ball_column = int(state.ball_column[i])  # pylint: disable=protected-access
        py_timestep = py_timestep._replace(observation=py_env._frame())  # pylint: disable=protected-access
      assert int(timestep.step_type[i]) == _step_type(py_timestep)
      assert float(timestep.reward[i]) == float(py_timestep.reward or 0.0)
      assert float(timestep.discount[i]) == float(
          1.0 if py_timestep.discount is None else py_timestep.discount)
      np.testing.assert_array_equal(timestep.observation["frame"][i].numpy(),
                                    py_timestep.observation)


def test_tf_catch_draws_every_column_and_traces_once():
  env = catch.Catch()
  state, _ = env.reset(tf.constant([7, 0]), 256)
  assert set(state.ball_column.numpy()) == set(range(py_catch.COLUMNS))
  step = tf.function(env.step)
  for _ in range(20):
    state, timestep = step(state, tf.ones([256], tf.int32))
  assert step.experimental_get_tracing_count() == 1
  assert timestep.observation["frame"].dtype == tf.uint8


def _gym_cartpole(physics):
  """Gymnasium's CartPole-v1 through the suite's adapter, its pole where
  `physics` says."""
  env = custom.GymnasiumEnv("CartPole-v1", seed=0)
  env.reset()
  env._env.unwrapped.state = np.asarray(physics, np.float64)  # pylint: disable=protected-access
  return env


def _time_limit(env):
  """Gymnasium's TimeLimit wrapper around the game."""
  wrapper = env._env  # pylint: disable=protected-access
  while not hasattr(wrapper, "_elapsed_steps"):
    wrapper = wrapper.env
  return wrapper


@_SETTINGS
@hypothesis.given(seed=st.integers(0, 2**31 - 1),
                  actions=st.lists(st.integers(0, 1), min_size=1,
                                   max_size=60))
def test_tf_cartpole_equals_gymnasium_until_its_episode_ends(seed, actions):
  env = cartpole.CartPole()
  state, timestep = env.reset(tf.constant([seed, 1]), 1)
  start = timestep.observation["frame"][0].numpy()
  assert (np.abs(start) <= cartpole.RESET_BOUND).all()
  gym = _gym_cartpole(start)
  for action in actions:
    state, timestep = env.step(state, tf.constant([action]))
    py_timestep = gym.step(action)
    assert int(timestep.step_type[0]) == _step_type(py_timestep)
    assert float(timestep.reward[0]) == float(py_timestep.reward)
    assert float(timestep.discount[0]) == float(py_timestep.discount)
    np.testing.assert_allclose(timestep.observation["frame"][0].numpy(),
                               py_timestep.observation, atol=1e-4)
    if py_timestep.last():
      break
  gym.close()


def test_tf_cartpole_truncates_at_500_steps_and_starts_again():
  env = cartpole.CartPole()
  state, _ = env.reset(tf.constant([3, 4]), 2)
  # Two steps before the time limit, upright: the limit, not the pole, ends it.
  state = state._replace(steps=tf.constant([498, 10]),
                         physics=tf.zeros([2, 4]))
  gym = _gym_cartpole(np.zeros(4))
  _time_limit(gym)._elapsed_steps = 498  # pylint: disable=protected-access
  for expected in (tfenvs.MID, tfenvs.LAST):
    state, timestep = env.step(state, tf.constant([0, 1]))
    py_timestep = gym.step(0)
    assert int(timestep.step_type[0]) == expected == _step_type(py_timestep)
  assert float(timestep.discount[0]) == 1.0 == py_timestep.discount
  assert int(timestep.step_type[1]) == tfenvs.MID
  state, timestep = env.step(state, tf.constant([0, 1]))
  assert int(timestep.step_type[0]) == tfenvs.FIRST
  assert float(timestep.reward[0]) == 0.0 and int(state.steps[0]) == 0
  gym.close()


@pytest.mark.parametrize("env", [catch.Catch(), cartpole.CartPole()],
                         ids=lambda e: e.name)
def test_tf_environments_keep_their_specs(env):
  state, timestep = env.reset(tf.constant([0, 0]), 4)
  for name, (shape, dtype) in env.observation_spec.items():
    assert timestep.observation[name].shape == (4, *shape)
    assert timestep.observation[name].dtype == tf.as_dtype(dtype)
  _, timestep = env.step(state, tf.zeros([4], tf.int32))
  assert timestep.reward.dtype == tf.float32
  assert timestep.step_type.dtype == tf.int32
