"""Environments written in TensorFlow: a whole batch stepped inside a graph.

An acting loop that calls Python environments leaves the graph at every
step. Environments written as pure TensorFlow functions can instead be
stepped inside one compiled program together with the policy and the update
(the Podracer report's "Anakin" architecture). The interface follows
`dm_env` closely, batched and without side effects:

* `reset(seed, batch_size) -> (state, timestep)`: a new batch of episodes;
  `seed` is a `[2]` integer seed for TensorFlow's stateless random ops.
* `step(state, action) -> (state, timestep)`: one step of every environment;
  `action` is `[batch]` int32. An environment whose last timestep was LAST
  starts a new episode instead (a FIRST timestep, reward 0, discount 1), as
  `acting.envs.DmEnvBatch` does with Python environments.

A state is a nest of tensors (a NamedTuple) that carries everything,
including its random seed, so both functions can be traced once and run in
`tf.function`, `tf.while_loop` or under `tf.distribute` without Python state.
`timestep.step_type` uses dm_env's values (FIRST 0, MID 1, LAST 2); a LAST
step with discount 0 is a termination, with discount 1 a truncation.
"""

from typing import Any, Mapping, NamedTuple

import tensorflow as tf

FIRST, MID, LAST = 0, 1, 2


class TimeStep(NamedTuple):
  """A batch of timesteps: `step_type` int32, `reward` and `discount`
  float32, each `[batch]`; `observation` a dict of `[batch, ...]` tensors."""
  step_type: tf.Tensor
  reward: tf.Tensor
  discount: tf.Tensor
  observation: Mapping[str, tf.Tensor]


class TFEnvironment:
  """A batched environment as pure TensorFlow functions (module docstring)."""

  #: The environment's name, as its Python version's suite names its level.
  name: str = ""
  num_actions: int = 0
  #: {name: (shape without the batch, numpy dtype)}, as `suites.EnvSpec`.
  observation_spec: Mapping[str, Any] = {}

  def reset(self, seed: tf.Tensor, batch_size: int):
    raise NotImplementedError

  def step(self, state, action: tf.Tensor):
    raise NotImplementedError


def split_seed(seed: tf.Tensor):
  """(the seed to carry on, a seed to draw with) from a `[2]` seed."""
  seeds = tf.random.experimental.stateless_split(seed, num=2)
  return seeds[0], seeds[1]
