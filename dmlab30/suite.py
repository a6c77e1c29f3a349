"""DMLab-30 as an `impala_tf.suites.Suite`.

Training plays the `_train` scripts (Table D.3: 72x96 RGB frames plus the
instruction, action repeat 4, the 9-action set); evaluation plays the `_test`
scripts with `allowHoldOutLevels` and the fixed evaluation mixer seed
(`env.TEST_MIXER_SEED`), as the paper's code does. Levels are spread over
environments round-robin, so each level gets the same number of
environments when the counts divide (the paper gives every task the same
number of actors).
"""

import math
from typing import Any, Mapping, Sequence

import numpy as np

from dmlab30 import actions
from dmlab30 import availability
from dmlab30 import engine
from dmlab30 import env as env_lib
from dmlab30 import instructions
from dmlab30 import levels as levels_lib
from dmlab30 import scores
from impala_tf.acting import envs
from impala_tf import suites


class DmLab30(suites.Suite):
  """See the module docstring."""

  name = "dmlab30"
  default_preset = "dmlab30"
  default_levels = levels_lib.LEVELS
  envs_per_actor = 4
  action_repeat = actions.NUM_ACTION_REPEATS
  eval_episodes = 500  # [paper Table 3] 500 test episodes per level.
  options = (
      suites.Option("level_cache_dir", "level_cache_dir", str,
                    "DMLab: a directory for the level cache shared by the "
                    "actors."),
      suites.Option("dataset_path", "dataset_path", str,
                    "DMLab: the psychlab dataset path."),
  )
  # Further keywords of `env.make`, for programmatic use (e.g. `engine`, a
  # module following deepmind_lab's API, in tests).
  extra_option_keys = ("width", "height", "instruction_length",
                       "level_cache", "renderer", "runfiles_path",
                       "extra_config", "engine")

  def check_available(self) -> None:
    engine.check_engine()

  def unavailable_levels(self, levels, options, *, evaluation=False):
    """Each level is loaded once in a process of its own (the engine
    exits its process on a missing map) and the outcome kept per engine
    build: `dmlab30.availability`."""
    return availability.unavailable_levels(
        levels, "test" if evaluation else "train", options)

  def canonical_level(self, name: str) -> str:
    return levels_lib.canonical_name(name)

  def resolve_levels(self, levels):
    names = []
    for level in levels or ():
      names.extend(levels_lib.TABLE2 if level == levels_lib.TABLE2_ALIAS
                   else (level,))
    return super().resolve_levels(names)

  def preset_for(self, levels) -> str:
    """One level, or Table 2's tasks: the single-task preset (Table D.3);
    several DMLab-30 levels (or none given: all 30): the multi-task one."""
    levels = list(levels or ())
    single = len(levels) == 1 or (levels and all(
        level == levels_lib.TABLE2_ALIAS or level in levels_lib.TABLE2
        for level in levels))
    return "dmlab_single_task" if single else self.default_preset

  def env_spec(self, levels: Sequence[str],
               options: Mapping[str, Any]) -> suites.EnvSpec:
    frame = (options.get("height", env_lib.FRAME_HEIGHT),
             options.get("width", env_lib.FRAME_WIDTH), 3)
    length = options.get("instruction_length",
                         instructions.INSTRUCTION_MAX_LENGTH)
    return suites.EnvSpec(
        actions.NUM_ACTIONS, tuple(actions.ACTION_NAMES),
        {"frame": (frame, np.dtype(np.uint8)),
         "instruction": ((length,), np.dtype(np.int32))}, 1)

  def make_train_env(self, levels, level_ids, seed, options):
    return envs.DmEnvBatch(
        [env_lib.make(levels[level], seed=seed + j, **options)
         for j, level in enumerate(level_ids)], actions.NUM_ACTIONS)

  def make_eval_env(self, level, num_envs, seed, options):
    return envs.DmEnvBatch(
        [env_lib.make(level, mode="test", seed=seed + j, **options)
         for j in range(num_envs)], actions.NUM_ACTIONS)

  def normalized_score(self, level: str, mean_return: float) -> float:
    if level in levels_lib.EXTRA_LEVELS:
      return math.nan  # No human or random reference score.
    return scores.normalized_score(level, mean_return, capped=False)


SUITE = suites.register(DmLab30())
