"""Environment suites as plugins, and the registry that finds them by name.

A suite is everything a run, an evaluation or an export needs to know about a
family of environments: how its levels are named, what the agent observes and
can do, the preset and the number of environments per actor it trains with
by default, which level each actor's environments play, and how to build
environments for training and for evaluation (its evaluation protocol).

Each suite is one `Suite` object that its module registers with `register`
when imported. The built-in suites (`atari57`, `dmlab30`, `catch`) are
imported on first use; other packages add theirs under the entry-point group
`impala_tf.suites` (name = module), so `--suite=NAME` finds them without any
change here. A suite module must not import TensorFlow at import time: the
launcher checks flags before TF starts.
"""

from __future__ import annotations

import abc
import difflib
import importlib
import importlib.metadata
import math
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np

# Built-in suites: name -> module that registers it when imported.
_BUILTIN = {
    "atari57": "atari57.suite",
    "dmlab30": "dmlab30.suite",
    "catch": "impala_tf.suites.catch",
    "gymnasium": "impala_tf.suites.custom",
    "dm_env": "impala_tf.suites.custom",
}
ENTRY_POINT_GROUP = "impala_tf.suites"

_REGISTRY: dict[str, "Suite"] = {}


class SuiteUnavailableError(RuntimeError):
  """A suite's engine is not installed; the message says how to get it."""


class Option(NamedTuple):
  """An environment option a suite accepts, offered by the launcher as a flag.

  Attributes:
    flag: the launcher's flag name (`--flag`).
    key: the keyword the suite's environment factories take.
    kind: bool, int, float or str.
    help: the flag's help text.
  """
  flag: str
  key: str
  kind: type
  help: str


class EnvSpec(NamedTuple):
  """What the agent sees and does in a suite's environments.

  Attributes:
    num_actions: size of the action set shared by the run's levels.
    action_names: the meaning of each action index.
    observation_spec: name -> (shape, dtype) of one observation, without the
      batch dimension, e.g. {"frame": ((84, 84, 4), np.uint8)}.
    frame_stack: the environments' `frame_stack` (`envs.BatchedEnv`): S > 1
      when "frame" stacks the last S frames.
  """
  num_actions: int
  action_names: tuple[str, ...]
  observation_spec: Mapping[str, tuple]
  frame_stack: int


class Suite(abc.ABC):
  """The interface every suite implements (see the module docstring).

  Class attributes:
    name: the `--suite` name.
    default_preset: a key of `presets.PRESETS`.
    default_levels: the levels trained on when none are given.
    envs_per_actor: environments each actor steps by default.
    action_repeat: environment frames per agent step; a config's
      `frames_per_step` must equal it.
    options: environment options the launcher offers as flags.
    eval_episodes: episodes per level its evaluation protocol plays
      (`python -m impala_tf.evaluate` without `--episodes`).
  """

  name: str
  default_preset: str
  default_levels: tuple[str, ...]
  envs_per_actor: int
  action_repeat: int
  options: tuple[Option, ...] = ()
  eval_episodes: int = 200  # [ours] for a suite that names none.

  def preset_for(self, levels: Sequence[str]) -> str:
    """The preset a run on `levels` (as given, possibly empty) gets by
    default."""
    del levels
    return self.default_preset

  def check_available(self) -> None:
    """Raises `SuiteUnavailableError` when the suite's engine is missing."""

  def unavailable_levels(self, levels: Sequence[str],
                         options: Mapping[str, Any], *,
                         evaluation: bool = False) -> dict[str, str]:
    """The levels of `levels` (canonical names) that cannot be played on
    this machine, each with one line saying why and what to do (the
    engine's build lacks their files, say); for training, or with
    `evaluation` for the suite's evaluation protocol. Called before a run
    starts its processes. Default: none."""
    del levels, options, evaluation
    return {}

  @abc.abstractmethod
  def canonical_level(self, name: str) -> str:
    """The canonical name of level `name`; a ValueError names the closest
    valid ones."""

  def resolve_levels(self, levels: Optional[Sequence[str]]
                     ) -> tuple[str, ...]:
    """Canonical names of `levels` (the defaults when empty or None)."""
    names = tuple(self.canonical_level(level) for level in levels or ())
    if not names:
      return tuple(self.default_levels)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
      raise ValueError(f"Level(s) {', '.join(repeated)} given more than "
                       "once; give each level once.")
    return names

  def check_options(self, levels: Sequence[str],
                    options: Mapping[str, Any]) -> dict[str, Any]:
    """The environment options to use for `levels`; raises ValueError for a
    combination the suite cannot play."""
    known = {option.key for option in self.options}
    unknown = sorted(set(options) - known - set(self.extra_option_keys))
    if unknown:
      raise ValueError(f"Suite {self.name!r} has no environment option(s) "
                       f"{unknown}; it accepts {sorted(known)}.")
    return dict(options)

  # Keywords the factories accept beyond `options` (for programmatic use).
  extra_option_keys: tuple[str, ...] = ()

  @abc.abstractmethod
  def env_spec(self, levels: Sequence[str],
               options: Mapping[str, Any]) -> EnvSpec:
    """Actions and observations of the environments for `levels`."""

  def level_ids(self, actor_index: int, envs_per_actor: int,
                num_levels: int) -> np.ndarray:
    """int32 `[envs_per_actor]`: the level each of actor `actor_index`'s
    environments plays.

    Default: environment `j` of actor `i` plays level
    `(i * envs_per_actor + j) % num_levels`, so every level gets the same
    number of environments when the counts divide (the paper gives each
    DMLab-30 task the same number of actors).
    """
    first = actor_index * envs_per_actor
    return (np.arange(first, first + envs_per_actor) % num_levels).astype(
        np.int32)

  @abc.abstractmethod
  def make_train_env(self, levels: Sequence[str], level_ids: np.ndarray,
                     seed: int, options: Mapping[str, Any]):
    """The `envs.BatchedEnv` one actor trains on: environment `j` plays
    `levels[level_ids[j]]`."""

  @abc.abstractmethod
  def make_eval_env(self, level: str, num_envs: int, seed: int,
                    options: Mapping[str, Any]):
    """`num_envs` environments of `level` under the suite's evaluation
    protocol, as an `envs.BatchedEnv` whose `episode_return` marks each
    finished evaluation episode."""

  def normalized_score(self, level: str, mean_return: float) -> float:
    """Human-normalised score in percent (0 = random, 100 = human); NaN
    where the suite has no reference scores."""
    del level, mean_return
    return math.nan

  def suite_scores(self, mean_returns: Mapping[str, float]
                   ) -> dict[str, float]:
    """Named scores (percent) over the levels given: "mean", "median" and
    "capped_mean" (each level capped at 100, the paper's PBT fitness).
    Empty where the suite has no reference scores."""
    scores = np.array([self.normalized_score(level, value)
                       for level, value in mean_returns.items()], np.float64)
    if not scores.size or np.isnan(scores).any():
      return {}
    return {"mean": float(scores.mean()), "median": float(np.median(scores)),
            "capped_mean": float(np.minimum(scores, 100.0).mean())}


def register(suite: Suite) -> Suite:
  """Makes `suite` available under `suite.name`; returns it."""
  if not isinstance(suite, Suite):
    raise TypeError(f"register() takes a Suite, got {suite!r}.")
  existing = _REGISTRY.get(suite.name)
  if existing is not None and type(existing) is not type(suite):
    raise ValueError(f"A different suite is already registered as "
                     f"{suite.name!r}: {type(existing).__name__}.")
  _REGISTRY[suite.name] = suite
  return suite


def _entry_points() -> dict[str, str]:
  return {ep.name: ep.value for ep in
          importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def names() -> tuple[str, ...]:
  """Every suite name that `get` accepts."""
  return tuple(sorted(set(_BUILTIN) | set(_entry_points()) | set(_REGISTRY)))


def get(name: str) -> Suite:
  """The suite called `name`, importing its module on first use."""
  if name not in _REGISTRY:
    module = _BUILTIN.get(name) or _entry_points().get(name)
    if module is None:
      close = difflib.get_close_matches(name, names(), n=1)
      hint = f" Did you mean {close[0]!r}?" if close else ""
      raise ValueError(f"Unknown suite {name!r}; expected one of "
                       f"{', '.join(names())}.{hint}")
    importlib.import_module(module.partition(":")[0])
    if name not in _REGISTRY:
      raise RuntimeError(f"Module {module!r} did not register a suite named "
                         f"{name!r} (call impala_tf.suites.register).")
  return _REGISTRY[name]


def all_options() -> dict[str, Option]:
  """flag name -> Option over every suite `names()` lists (for the
  launcher's flags). Two suites may share a flag only with the same type."""
  result: dict[str, Option] = {}
  for name in names():
    for option in get(name).options:
      seen = result.get(option.flag)
      if seen is not None and seen.kind is not option.kind:
        raise ValueError(f"Suite option --{option.flag} is a {seen.kind} in "
                         f"one suite and a {option.kind} in {name!r}.")
      result.setdefault(option.flag, option)
  return result
