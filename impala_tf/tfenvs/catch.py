"""Catch (`impala_tf/suites/catch.py`) written in TensorFlow.

The same game, frame and reward as the Catch suite's Python environment, so
a policy trained on one plays the other: a ball falls from a random column
of the top row, one row per step; the paddle on the bottom row moves left,
stays or moves right; when the ball reaches the bottom row the episode ends
with +1 under the paddle and -1 elsewhere.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from impala_tf.suites import catch as catch_suite
from impala_tf import tfenvs

ROWS, COLUMNS = catch_suite.ROWS, catch_suite.COLUMNS


class State(NamedTuple):
  ball_row: tf.Tensor     # [batch] int32
  ball_column: tf.Tensor  # [batch] int32
  paddle: tf.Tensor       # [batch] int32
  done: tf.Tensor         # [batch] bool: the last timestep was LAST.
  seed: tf.Tensor         # [2] int32, for the next balls' columns.


class Catch(tfenvs.TFEnvironment):
  """See the module docstring."""

  name = "catch"
  num_actions = catch_suite.NUM_ACTIONS
  observation_spec = {"frame": (catch_suite.FRAME_SHAPE, np.dtype(np.uint8))}

  def reset(self, seed, batch_size: int):
    seed, draw = tfenvs.split_seed(tf.cast(seed, tf.int32))
    state = State(
        ball_row=tf.zeros([batch_size], tf.int32),
        ball_column=self._columns(draw, batch_size),
        paddle=tf.fill([batch_size], COLUMNS // 2),
        done=tf.zeros([batch_size], tf.bool),
        seed=seed)
    return state, self._timestep(state, tf.fill([batch_size], tfenvs.FIRST),
                                 tf.zeros([batch_size]))

  def step(self, state: State, action):
    batch_size = tf.shape(state.paddle)[0]
    seed, draw = tfenvs.split_seed(state.seed)
    action = tf.cast(action, tf.int32)
    paddle = tf.clip_by_value(state.paddle + action - 1, 0, COLUMNS - 1)
    ball_row = state.ball_row + 1
    landed = ball_row == ROWS - 1
    caught = tf.where(paddle == state.ball_column, 1.0, -1.0)
    # Environments whose episode ended start a new one instead.
    restart = state.done
    moved = State(
        ball_row=tf.where(restart, 0, ball_row),
        ball_column=tf.where(restart, self._columns(draw, batch_size),
                             state.ball_column),
        paddle=tf.where(restart, COLUMNS // 2, paddle),
        done=tf.logical_and(tf.logical_not(restart), landed),
        seed=seed)
    step_type = tf.where(restart, tfenvs.FIRST,
                         tf.where(landed, tfenvs.LAST, tfenvs.MID))
    reward = tf.where(tf.logical_and(tf.logical_not(restart), landed),
                      caught, 0.0)
    return moved, self._timestep(moved, step_type, reward)

  @staticmethod
  def _columns(draw, batch_size):
    return tfenvs.uniform([batch_size], draw, 0, COLUMNS, dtype=tf.int32)

  @staticmethod
  def _timestep(state: State, step_type, reward):
    discount = tf.where(step_type == tfenvs.LAST, 0.0, 1.0)
    return tfenvs.TimeStep(step_type=step_type, reward=reward,
                           discount=discount,
                           observation={"frame": frame(state)})


def frame(state: State) -> tf.Tensor:
  """The board as the Python suite draws it: `[batch, 20, 20, 1]` uint8,
  each cell 2 rows by 4 columns of 255s."""
  ball = (tf.one_hot(state.ball_row, ROWS)[:, :, None] *
          tf.one_hot(state.ball_column, COLUMNS)[:, None, :])
  paddle = (tf.one_hot(tf.fill(tf.shape(state.paddle), ROWS - 1), ROWS)
            [:, :, None] * tf.one_hot(state.paddle, COLUMNS)[:, None, :])
  board = tf.minimum(ball + paddle, 1.0)
  board = tf.repeat(tf.repeat(board, catch_suite.CELL_HEIGHT, axis=1),
                    catch_suite.CELL_WIDTH, axis=2)
  return tf.cast(board * 255.0, tf.uint8)[..., None]
