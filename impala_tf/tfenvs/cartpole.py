"""Gymnasium's CartPole-v1 written in TensorFlow.

The dynamics, thresholds, rewards and 500-step time limit of
`gymnasium.envs.classic_control.CartPoleEnv` (Euler integration; Barto,
Sutton and Anderson 1983), computed in float32 where Gymnasium uses float64:
the observation is the same float32 vector `[x, x_dot, theta, theta_dot]`.
Reward 1 on every step, the terminating one included; a fallen pole or a cart
off the track is a termination (discount 0), the 500th step a truncation
(discount 1), as `--suite=gymnasium --levels=CartPole-v1` reports them.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from impala_tf import tfenvs

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_CART + MASS_POLE
HALF_LENGTH = 0.5  # Gymnasium's `length`: half the pole's length.
POLE_MASS_LENGTH = MASS_POLE * HALF_LENGTH
FORCE = 10.0
TAU = 0.02  # Seconds between steps.
THETA_LIMIT = 12 * 2 * math.pi / 360
X_LIMIT = 2.4
MAX_STEPS = 500  # CartPole-v1's time limit.
RESET_BOUND = 0.05  # Each state variable starts uniform in [-0.05, 0.05).


class State(NamedTuple):
  physics: tf.Tensor  # [batch, 4] float32: x, x_dot, theta, theta_dot.
  steps: tf.Tensor    # [batch] int32: steps taken in this episode.
  done: tf.Tensor     # [batch] bool: the last timestep was LAST.
  seed: tf.Tensor     # [2] int32


class CartPole(tfenvs.TFEnvironment):
  """See the module docstring."""

  name = "CartPole-v1"
  num_actions = 2
  observation_spec = {"frame": ((4,), np.dtype(np.float32))}

  def reset(self, seed, batch_size: int):
    seed, draw = tfenvs.split_seed(tf.cast(seed, tf.int32))
    state = State(physics=self._starts(draw, batch_size),
                  steps=tf.zeros([batch_size], tf.int32),
                  done=tf.zeros([batch_size], tf.bool), seed=seed)
    return state, self._timestep(state, tf.fill([batch_size], tfenvs.FIRST),
                                 tf.zeros([batch_size]),
                                 tf.ones([batch_size]))

  def step(self, state: State, action):
    batch_size = tf.shape(state.steps)[0]
    seed, draw = tfenvs.split_seed(state.seed)
    physics = advance(state.physics, action)
    x, theta = physics[:, 0], physics[:, 2]
    fell = ((x < -X_LIMIT) | (x > X_LIMIT) |
            (theta < -THETA_LIMIT) | (theta > THETA_LIMIT))
    steps = state.steps + 1
    timed_out = steps >= MAX_STEPS
    last = fell | timed_out
    restart = state.done
    moved = State(
        physics=tf.where(restart[:, None], self._starts(draw, batch_size),
                         physics),
        steps=tf.where(restart, 0, steps),
        done=~restart & last,
        seed=seed)
    step_type = tf.where(restart, tfenvs.FIRST,
                         tf.where(last, tfenvs.LAST, tfenvs.MID))
    reward = tf.where(restart, 0.0, 1.0)
    discount = tf.where(~restart & fell, 0.0, 1.0)
    return moved, self._timestep(moved, step_type, reward, discount)

  @staticmethod
  def _starts(draw, batch_size):
    return tfenvs.uniform([batch_size, 4], draw, -RESET_BOUND, RESET_BOUND)

  @staticmethod
  def _timestep(state, step_type, reward, discount):
    return tfenvs.TimeStep(step_type=step_type, reward=reward,
                           discount=discount,
                           observation={"frame": state.physics})


def advance(physics: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
  """One Euler step of the cart and pole (`[batch, 4]`) under `action`
  (`[batch]`: 0 pushes left, 1 right), as Gymnasium's `step` computes it."""
  x, x_dot, theta, theta_dot = tf.unstack(physics, axis=1)
  force = tf.where(tf.cast(action, tf.int32) == 1, FORCE, -FORCE)
  cos, sin = tf.cos(theta), tf.sin(theta)
  temp = (force + POLE_MASS_LENGTH * tf.square(theta_dot) * sin) / TOTAL_MASS
  theta_acc = (GRAVITY * sin - cos * temp) / (
      HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * tf.square(cos) / TOTAL_MASS))
  x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS
  return tf.stack([x + TAU * x_dot, x_dot + TAU * x_acc,
                   theta + TAU * theta_dot, theta_dot + TAU * theta_acc],
                  axis=1)
