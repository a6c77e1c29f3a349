"""Small `dm_env` environments for tests of `--suite=dm_env`
(`--env_factory=impala_tf.testing.small_envs:<function>`)."""

import dm_env
from dm_env import specs
import numpy as np


class Countdown(dm_env.Environment):
  """Observation [steps left, 1], reward 1 a step whatever the action; an
  episode of `length` steps ends with dm_env's truncation (a time limit)
  or termination, as `ends` says."""

  def __init__(self, length: int = 3, ends: str = "truncation"):
    self.length, self.ends = int(length), ends
    self._t = 0

  def _observation(self):
    return np.array([self.length - self._t, 1.0], np.float32)

  def reset(self):
    self._t = 0
    return dm_env.restart(self._observation())

  def step(self, action):
    self._t += 1
    if self._t < self.length:
      return dm_env.transition(1.0, self._observation())
    end = dm_env.truncation if self.ends == "truncation" else (
        dm_env.termination)
    return end(1.0, self._observation())

  def observation_spec(self):
    return specs.Array((2,), np.float32, name="frame")

  def action_spec(self):
    return specs.DiscreteArray(2, np.int32, name="action")


class Lever(dm_env.Environment):
  """Pull the right one of `levers` levers (a one-hot cue says which) for
  reward 1; episodes of `length` steps. A policy that reads its
  observation returns `length`; a random one `length / levers`."""

  def __init__(self, seed: int = 0, levers: int = 3, length: int = 10):
    self._rng = np.random.default_rng(seed)
    self.levers, self.length = int(levers), int(length)
    self._t, self._cue = 0, 0

  def _observation(self):
    self._cue = int(self._rng.integers(self.levers))
    return np.eye(self.levers, dtype=np.float32)[self._cue]

  def reset(self):
    self._t = 0
    return dm_env.restart(self._observation())

  def step(self, action):
    reward = float(int(action) == self._cue)
    self._t += 1
    if self._t == self.length:
      return dm_env.termination(reward, self._observation())
    return dm_env.transition(reward, self._observation())

  def observation_spec(self):
    return specs.Array((self.levers,), np.float32, name="frame")

  def action_spec(self):
    return specs.DiscreteArray(self.levers, np.int32, name="action")


def countdown(length: int = 3, ends: str = "truncation") -> Countdown:
  return Countdown(length, ends)


def lever(seed: int = 0, levers: int = 3, length: int = 10) -> Lever:
  return Lever(seed, levers, length)
