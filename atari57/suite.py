"""Atari-57 as an `impala_tf.suites.Suite`.

Training follows Table G.1 (4 stacked 84x84 grayscale frames, action repeat
4, a lost life ends the training episode, raw rewards clipped by the
learner); evaluation follows the paper's protocol (`evaluation.NoopStarts`:
whole games, 1 to 30 no-op starts, the 108,000-frame cap). An actor steps
one game in C++ (ale-py's vector environment), so levels are assigned per
actor: actor `i` plays game `i % len(levels)`.
"""

from typing import Any, Mapping, Sequence

import numpy as np

from atari57 import env as env_lib
from atari57 import evaluation
from atari57 import games
from atari57 import scores
from impala_tf import suites


class Atari57(suites.Suite):
  """See the module docstring."""

  name = "atari57"
  default_preset = "atari"
  default_levels = ("pong",)
  envs_per_actor = 16
  action_repeat = env_lib.ACTION_REPEAT
  eval_episodes = 200  # [paper Table 4, App. C] 200 episodes a game.
  options = (
      suites.Option("full_action_space", "full_action_space", bool,
                    "Atari: all 18 actions (default: the minimal set for one "
                    "game, the full set for several)."),
      suites.Option("sticky_actions", "repeat_action_probability", float,
                    "Atari: repeat-action probability (0.25 in Machado et "
                    "al.; 0 in the paper)."),
  )
  extra_option_keys = tuple(
      f for f in env_lib.AtariOptions.__dataclass_fields__
      if f not in ("full_action_space", "repeat_action_probability"))

  def preset_for(self, levels: Sequence[str]) -> str:
    """One game (or none given: Pong): the experts' preset; several: the
    multi-task agent's (deep, full action set, Table G.1)."""
    return "atari_multitask" if len(levels or ()) > 1 else self.default_preset

  def canonical_level(self, name: str) -> str:
    return games.canonical_name(name)

  def check_options(self, levels: Sequence[str],
                    options: Mapping[str, Any]) -> dict[str, Any]:
    options = super().check_options(levels, options)
    if len(levels) > 1:
      if options.get("full_action_space") is False:
        raise ValueError(
            "Several Atari games share one agent only with the full 18-action "
            "set (the paper's multi-task agent); drop full_action_space=False "
            f"or train one game. Games: {', '.join(levels)}.")
      options["full_action_space"] = True
    env_lib.AtariOptions(**options)  # Checks the values.
    return options

  def env_spec(self, levels: Sequence[str],
               options: Mapping[str, Any]) -> suites.EnvSpec:
    # The minimal action set is the ROM's: ask ale-py.
    probe = env_lib.make_batched(levels[0], 1, **options)
    try:
      return suites.EnvSpec(probe.num_actions, tuple(probe.action_names),
                            dict(probe.observation_spec), probe.frame_stack)
    finally:
      probe.close()

  def level_ids(self, actor_index: int, envs_per_actor: int,
                num_levels: int) -> np.ndarray:
    return np.full(envs_per_actor, actor_index % num_levels, np.int32)

  def make_train_env(self, levels, level_ids, seed, options):
    return env_lib.make_batched(levels[level_ids[0]], len(level_ids),
                                seed=seed, **options)

  def make_eval_env(self, level, num_envs, seed, options):
    options = dict(options, noop_max=0, life_loss_terminal=False)
    env = env_lib.make_batched(level, num_envs, seed=seed, **options)
    return evaluation.NoopStarts(env, seed=seed)

  def normalized_score(self, level: str, mean_return: float) -> float:
    return scores.normalized_score(level, mean_return)

  def suite_scores(self, mean_returns: Mapping[str, float]
                   ) -> dict[str, float]:
    result = scores.suite_scores(mean_returns)
    return {"mean": result.mean, "median": result.median,
            "capped_mean": result.capped_mean}


SUITE = suites.register(Atari57())
