"""Every one of the 57 games builds and steps on ale-py's ROMs."""

import ale_py
from ale_py import roms
import numpy as np
import pytest

import atari57


def _minimal_action_count(game):
  # ale-py's own interface, independent of the vector environment.
  ale = ale_py.ALEInterface()
  ale.setLoggerMode(ale_py.LoggerMode.Error)
  ale.loadROM(roms.get_rom_path(game))
  return len(ale.getMinimalActionSet())


def _check_game(game):
  env = atari57.make_batched(game, 1, seed=0)
  assert env.num_actions == _minimal_action_count(game)
  assert env.action_names[0] == "NOOP"
  out = env.reset()
  for action in (env.num_actions - 1, 0, 1 % env.num_actions):
    out = env.step(np.array([action]))
  frame = out.observation["frame"]
  assert frame.shape == (1, 84, 84, 4) and frame.dtype == np.uint8
  # Three steps after the reset, the stack holds at least two screens.
  assert np.count_nonzero(frame[0].max(axis=(0, 1))) >= 2
  env.close()

  env = atari57.make_batched(game, 1, seed=0, full_action_space=True)
  assert env.num_actions == 18
  env.reset()
  assert env.step(np.array([17])).observation["frame"].shape == (1, 84, 84, 4)
  env.close()


@pytest.mark.parametrize("game", ["pong", "skiing", "montezuma_revenge"])
def test_a_few_games_build_and_step(game):
  _check_game(game)


@pytest.mark.slow
def test_all_57_games_build_and_step():
  # One loop rather than 57 test cases: the cost is four ROM loads per game.
  for game in atari57.GAMES:
    _check_game(game)
