"""DMLab-30 levels as `dm_env.Environment`s over DeepMind Lab's `Lab` class.

What the agent sees and does (the paper's setting, Table D.3):

* observation: {"frame": uint8 [72, 96, 3] (`RGB_INTERLEAVED`),
  "instruction": int32 [L] (the `INSTR` string, tokenised by
  `dmlab30.instructions.tokenize`; 0 = padding)};
* action: an index into the 9-action set `ACTION_SET`, held for 4 engine
  frames via `Lab.step(vector, num_steps=4)`; the engine sums the reward over
  those frames (and stops early if the episode ends inside them);
* every episode is reset with a fresh seed drawn from a generator seeded by
  `seed` (the official code's scheme), so actors see different maps.

Training loads the `_train` scripts; evaluation (`mode="test"`) loads the
`_test` scripts with `allowHoldOutLevels` and the official fixed `mixerSeed`.
"""

import logging
import os
from typing import Any, Mapping, Optional

import dm_env
from dm_env import specs
import numpy as np

from dmlab30 import actions as actions_lib
from dmlab30 import cache as cache_lib
from dmlab30 import engine as engine_lib
from dmlab30 import instructions
from dmlab30 import levels as levels_lib

#: Observation size of the paper (height, width).
FRAME_HEIGHT, FRAME_WIDTH = 72, 96

#: DeepMind Lab's `mixerSeed` for evaluation in the official code; it selects
#: a level-generation stream disjoint from training's.
TEST_MIXER_SEED = 0x600D5EED

MODES = ("train", "test")

_OBSERVATIONS = ["RGB_INTERLEAVED", "INSTR"]

_logger = logging.getLogger(__name__)


def engine_config(level: str, mode: str = "train", *,
                  width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT,
                  dataset_path: Optional[str] = None,
                  extra_config: Optional[Mapping[str, Any]] = None,
                  ) -> tuple[str, dict[str, str]]:
  """The level path and `Lab` config for `level` in `mode`.

  Returns:
    (level path, config) where config maps str -> str, as `Lab` requires.
  """
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
  path = (levels_lib.train_level(level) if mode == "train"
          else levels_lib.test_level(level))
  config = {"width": width, "height": height, "logLevel": "WARN"}
  if dataset_path:
    # Read by the psychlab levels that show the Brady et al. (2008) images.
    config["datasetPath"] = os.fspath(dataset_path)
  if mode == "test":
    config["allowHoldOutLevels"] = "true"
    config["mixerSeed"] = TEST_MIXER_SEED
  for key, value in (extra_config or {}).items():
    config[key] = value
  return path, {str(k): str(v) for k, v in config.items()}


class DmLab30Env(dm_env.Environment):
  """One DMLab-30 level as a `dm_env.Environment` (see the module docstring).

  Episode ends: when the engine stops running after a step, that step is
  returned as LAST with discount 0 (the paper's code treats DMLab's time
  limit as a terminal). The engine has no observation after the end, so the
  LAST timestep repeats the previous observation. The next `step()` (or
  `reset()`) starts a new episode with a new seed.
  """

  def __init__(self, lab, *, level: str, seed: int = 0,
               num_action_repeats: int = actions_lib.NUM_ACTION_REPEATS,
               instruction_length: int = instructions.INSTRUCTION_MAX_LENGTH,
               height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH):
    """Wraps an already constructed `deepmind_lab.Lab` (use `make`).

    Args:
      lab: a `deepmind_lab.Lab` observing `RGB_INTERLEAVED` and `INSTR`.
      level: canonical level name, for logs and results.
      seed: seeds the generator of per-episode engine seeds.
      num_action_repeats: engine frames per agent step.
      instruction_length: L, tokens per instruction.
      height, width: the frame size `lab` was configured with.
    """
    if num_action_repeats < 1:
      raise ValueError(
          f"num_action_repeats must be at least 1, got {num_action_repeats}.")
    self._lab = lab
    self.level = level
    self._rng = np.random.RandomState(seed)
    self._repeats = int(num_action_repeats)
    self._instruction_length = int(instruction_length)
    self._frame_shape = (int(height), int(width), 3)
    self._last_observation = None
    self._needs_reset = True

  def _observation(self):
    raw = self._lab.observations()
    frame = raw["RGB_INTERLEAVED"]
    if frame.shape != self._frame_shape or frame.dtype != np.uint8:
      raise RuntimeError(
          f"DeepMind Lab returned a frame of shape {frame.shape} and dtype "
          f"{frame.dtype}; expected {self._frame_shape} uint8.")
    observation = {
        "frame": frame,
        "instruction": instructions.tokenize(raw["INSTR"],
                                             self._instruction_length),
    }
    self._last_observation = observation
    return observation

  def reset(self) -> dm_env.TimeStep:
    # A Python int: the engine rejects NumPy integers as seeds.
    seed = int(self._rng.randint(0, 2**31 - 1))
    self._lab.reset(seed=seed)
    self._needs_reset = False
    return dm_env.restart(self._observation())

  def step(self, action) -> dm_env.TimeStep:
    """Takes agent action `action` (an int in [0, 9)) for 4 engine frames."""
    if self._needs_reset:
      return self.reset()
    index = int(action)
    if index != action or not 0 <= index < actions_lib.NUM_ACTIONS:
      raise ValueError(
          f"action must be an integer in [0, {actions_lib.NUM_ACTIONS}) "
          f"(one of {', '.join(actions_lib.ACTION_NAMES)}), got {action!r}.")
    reward = np.float32(self._lab.step(actions_lib.ACTION_SET[index],
                                       num_steps=self._repeats))
    if not self._lab.is_running():
      self._needs_reset = True
      return dm_env.termination(reward, self._last_observation)
    return dm_env.transition(reward, self._observation())

  def observation_spec(self):
    return {
        "frame": specs.Array(self._frame_shape, np.uint8, name="frame"),
        "instruction": specs.Array((self._instruction_length,), np.int32,
                                   name="instruction"),
    }

  def action_spec(self):
    return specs.DiscreteArray(actions_lib.NUM_ACTIONS, np.int32, name="action")

  def reward_spec(self):
    return specs.Array((), np.float32, name="reward")

  def close(self):
    self._lab.close()


def make(level: str, *, mode: str = "train", seed: int = 0,
         num_action_repeats: int = actions_lib.NUM_ACTION_REPEATS,
         width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT,
         instruction_length: int = instructions.INSTRUCTION_MAX_LENGTH,
         level_cache_dir: Optional[str] = None, level_cache=None,
         dataset_path: Optional[str] = None, renderer: str = "software",
         runfiles_path: Optional[str] = None,
         extra_config: Optional[Mapping[str, Any]] = None,
         engine=None) -> DmLab30Env:
  """Builds the DMLab-30 environment for `level`.

  Args:
    level: a name from `LEVELS` (or a `_train`/`_test` script name).
    mode: "train" (the `_train` scripts) or "test" (the `_test` scripts with
      `allowHoldOutLevels` and the fixed evaluation `mixerSeed`).
    seed: seeds the per-episode engine seeds; give each actor its own.
    num_action_repeats: engine frames per agent step (4 in the paper).
    width, height: frame size (96 x 72 in the paper).
    instruction_length: L, tokens per instruction.
    level_cache_dir: directory of a shared `LevelCache` (maps compiled once
      are reused by every actor); ignored if `level_cache` is given.
    level_cache: any object with DeepMind Lab's `fetch(key, pk3_path) -> bool`
      and `write(key, pk3_path)`.
    dataset_path: directory of the Brady et al. (2008) images used by the
      psychlab levels (DeepMind Lab's `datasetPath`); see docs/dmlab30.md.
    renderer: "software" (OSMesa) or "hardware" (EGL/GLX).
    runfiles_path: DeepMind Lab's runfiles directory, if not the default of
      its build (`deepmind_lab.set_runfiles_path`).
    extra_config: further `Lab` settings (values are converted to str).
    engine: the `deepmind_lab` module; None imports it (`check_engine`).

  Raises:
    EngineMissingError: `engine` is None and `deepmind_lab` is not importable.
    ValueError: unknown level (the message lists the valid ones) or mode.
  """
  canonical = levels_lib.canonical_name(level)
  path, config = engine_config(canonical, mode, width=width, height=height,
                               dataset_path=dataset_path,
                               extra_config=extra_config)
  if engine is None:
    engine = engine_lib.check_engine()
  if (canonical in levels_lib.PSYCHLAB_DATASET_LEVELS
      and "datasetPath" not in config):
    _logger.warning(
        "Level %s shows the psychlab image dataset; pass dataset_path "
        "(see docs/dmlab30.md).", canonical)
  if runfiles_path:
    engine.set_runfiles_path(os.fspath(runfiles_path))
  engine_lib.bind_engine_libraries(engine, renderer, runfiles_path)
  if level_cache is None and level_cache_dir is not None:
    level_cache = cache_lib.LevelCache(level_cache_dir)
  lab = engine.Lab(level=path, observations=list(_OBSERVATIONS), config=config,
                   renderer=renderer, level_cache=level_cache)
  return DmLab30Env(lab, level=canonical, seed=seed,
                    num_action_repeats=num_action_repeats,
                    instruction_length=instruction_length,
                    height=height, width=width)
