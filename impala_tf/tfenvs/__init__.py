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

# Every stateless random op here names its algorithm ("auto_select" may
# pick another one inside an XLA cluster) and draws integers (XLA makes
# floats from the same bits differently): the same seed gives an
# XLA-compiled program the same games as the graph one.
RNG_ALG = "philox"


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
  seeds = tf.random.experimental.stateless_split(seed, num=2, alg=RNG_ALG)
  return seeds[0], seeds[1]


class StepOutput(NamedTuple):
  """A batch step in the paper's convention (`acting.envs.EnvOutput`): an
  environment whose episode ended shows the next episode's first
  observation with `done` True and the final reward."""
  observation: Mapping[str, tf.Tensor]
  reward: tf.Tensor           # [batch] float32
  done: tf.Tensor             # [batch] bool: this observation starts a game.
  episode_return: tf.Tensor   # [batch] float32: a game that ended here; NaN.
  episode_length: tf.Tensor   # [batch] int32: its length; 0 elsewhere.
  truncated: tf.Tensor        # [batch] bool: it ended by a time limit.
  final_observation: Mapping[str, tf.Tensor]  # Its last observation.


class Episodes(NamedTuple):
  """The environments' state with the running returns and lengths."""
  env_state: Any
  returns: tf.Tensor  # [batch] float32
  lengths: tf.Tensor  # [batch] int32


def reset_batch(env: TFEnvironment, seed: tf.Tensor, batch_size: int):
  """(episodes, output) for a new batch: every environment starts a game."""
  state, timestep = env.reset(seed, batch_size)
  output = StepOutput(
      observation=timestep.observation, reward=tf.zeros([batch_size]),
      done=tf.ones([batch_size], tf.bool),
      episode_return=tf.fill([batch_size], float("nan")),
      episode_length=tf.zeros([batch_size], tf.int32),
      truncated=tf.zeros([batch_size], tf.bool),
      final_observation=timestep.observation)
  return Episodes(state, tf.zeros([batch_size]),
                  tf.zeros([batch_size], tf.int32)), output


def step_batch(env: TFEnvironment, episodes: Episodes, action: tf.Tensor):
  """(episodes, output): one step of every environment in the paper's
  convention. Where a game ends, the environment is stepped once more in
  the same call to start the next one (a TF environment's step after LAST
  is the next game's FIRST); elsewhere that second step is dropped."""
  state, timestep = env.step(episodes.env_state, action)
  ended = timestep.step_type == LAST
  restarted, first = env.step(state, action)
  state = _select(ended, restarted, state)
  observation = {name: _where(ended, first.observation[name], value)
                 for name, value in timestep.observation.items()}
  returns = episodes.returns + timestep.reward
  lengths = episodes.lengths + 1
  output = StepOutput(
      observation=observation, reward=timestep.reward, done=ended,
      episode_return=tf.where(ended, returns, float("nan")),
      episode_length=tf.where(ended, lengths, 0),
      truncated=ended & (timestep.discount > 0),
      final_observation=timestep.observation)
  return Episodes(state, tf.where(ended, 0.0, returns),
                  tf.where(ended, 0, lengths)), output


def uniform(shape, seed, minval, maxval, dtype=tf.float32):
  """Uniform in [minval, maxval) with this module's `RNG_ALG`; the same
  numbers with and without XLA (whose Philox turns bits into floats its
  own way: floats are made here from 24 random integer bits)."""
  if dtype.is_integer:
    return tf.random.stateless_uniform(shape, seed, minval, maxval,
                                       dtype=dtype, alg=RNG_ALG)
  bits = tf.random.stateless_uniform(shape, seed, 0, 2**24, dtype=tf.int32,
                                     alg=RNG_ALG)
  unit = (tf.cast(bits, tf.float32) + 0.5) / 2.0**24  # In (0, 1).
  return tf.cast(minval + (maxval - minval) * unit, dtype)


def _where(mask, a, b):
  """`tf.where` of `[batch]` mask over `[batch, ...]` values."""
  mask = tf.reshape(mask, tf.concat(
      [tf.shape(mask), tf.ones([tf.rank(a) - 1], tf.int32)], axis=0))
  return tf.where(mask, a, b)


def _select(mask, a, b):
  """State `a` where `mask`, else `b`, field by field; the unbatched `seed`
  field comes from `a` (it only moves a random stream on)."""
  return type(a)(**{
      name: (getattr(a, name) if name == "seed" else
             _where(mask, getattr(a, name), getattr(b, name)))
      for name in a._fields})
