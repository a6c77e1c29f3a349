"""Catch: a small, fast suite the whole pipeline learns in seconds.

A ball starts in a random column of the top row and falls one row per step;
the agent moves a paddle on the bottom row left, not at all, or right. When
the ball reaches the bottom row the episode ends with reward +1 if the paddle
is under it and −1 otherwise. The optimal return is +1, a uniformly random
policy gets about −0.6 on the 10x5 board, so learning is easy to assert.

The observation is the board rendered as a uint8 frame `[20, 20, 1]` (each
cell 2 rows by 4 columns of 255s). The size matters: the paper's shallow
network has two VALID convolutions (8x8/4, 4x4/2) whose last output is
computed from input pixels 0..19 only, so on a larger frame the bottom rows,
where the paddle is, would be invisible to it.
"""

from typing import Any, Mapping, Optional, Sequence

import dm_env
from dm_env import specs
import numpy as np

from impala_tf.acting import envs
from impala_tf import suites

ROWS, COLUMNS = 10, 5
CELL_HEIGHT, CELL_WIDTH = 2, 4
FRAME_SHAPE = (ROWS * CELL_HEIGHT, COLUMNS * CELL_WIDTH, 1)
ACTION_NAMES = ("LEFT", "STAY", "RIGHT")
NUM_ACTIONS = len(ACTION_NAMES)
EPISODE_LENGTH = ROWS - 1  # agent steps until the ball lands


class Catch(dm_env.Environment):
  """See the module docstring."""

  def __init__(self, seed: Optional[int] = None):
    self._rng = np.random.default_rng(seed)
    self._ball_row = self._ball_column = self._paddle = 0
    self._needs_reset = True

  def reset(self) -> dm_env.TimeStep:
    self._ball_row = 0
    self._ball_column = int(self._rng.integers(COLUMNS))
    self._paddle = COLUMNS // 2
    self._needs_reset = False
    return dm_env.restart(self._frame())

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    action = int(action)
    if not 0 <= action < NUM_ACTIONS:
      raise ValueError(f"Catch actions are 0, 1, 2 (left, stay, right); "
                       f"got {action}.")
    self._paddle = int(np.clip(self._paddle + action - 1, 0, COLUMNS - 1))
    self._ball_row += 1
    if self._ball_row == ROWS - 1:
      self._needs_reset = True
      reward = 1.0 if self._paddle == self._ball_column else -1.0
      return dm_env.termination(reward, self._frame())
    return dm_env.transition(0.0, self._frame())

  def _frame(self) -> np.ndarray:
    board = np.zeros((ROWS, COLUMNS), np.uint8)
    board[self._ball_row, self._ball_column] = 255
    board[ROWS - 1, self._paddle] = 255
    frame = np.kron(board, np.ones((CELL_HEIGHT, CELL_WIDTH), np.uint8))
    return frame[..., np.newaxis]

  def observation_spec(self):
    return specs.BoundedArray(FRAME_SHAPE, np.uint8, 0, 255, name="frame")

  def action_spec(self):
    return specs.DiscreteArray(NUM_ACTIONS, name="action")


class CatchSuite(suites.Suite):
  """One level, "catch"; evaluation plays plain episodes."""

  name = "catch"
  default_preset = "catch"
  default_levels = ("catch",)
  envs_per_actor = 8
  action_repeat = 1
  eval_episodes = 200  # [ours] the Atari protocol's number.

  def canonical_level(self, name: str) -> str:
    if name != "catch":
      raise ValueError(f"The catch suite has one level, 'catch'; got "
                       f"{name!r}.")
    return name

  def env_spec(self, levels: Sequence[str],
               options: Mapping[str, Any]) -> suites.EnvSpec:
    return suites.EnvSpec(NUM_ACTIONS, ACTION_NAMES,
                          {"frame": (FRAME_SHAPE, np.dtype(np.uint8))}, 1)

  def make_train_env(self, levels, level_ids, seed, options):
    return envs.DmEnvBatch([Catch(seed=seed + j)
                            for j in range(len(level_ids))], NUM_ACTIONS)

  def make_eval_env(self, level, num_envs, seed, options):
    return self.make_train_env((level,), np.zeros(num_envs, np.int32), seed,
                               options)


SUITE = suites.register(CatchSuite())
