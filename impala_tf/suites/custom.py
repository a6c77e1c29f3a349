"""Your own environment: any Gymnasium environment by id, or a `dm_env`
environment from a factory function.

  python -m impala_tf.launch --suite=gymnasium --levels=CartPole-v1
  python -m impala_tf.launch --suite=dm_env --env_factory=my_pkg.envs:make \\
      --env_kwargs='{"size": 8}'

Actions must be discrete (Gymnasium `Discrete`, dm_env `DiscreteArray`).
What the agent observes, as "frame":

* images (uint8 `[H, W, C]` or `[H, W]`) go to the paper's convolutional
  torsos, optionally made grey (`--obs_grey`), resized (`--obs_resize=HxW`,
  nearest pixel) and stacked (`--obs_stack=S`, the last S frames, zeros
  before an episode's first; grey stacks travel as single frames, as
  Atari's do);
* flat vectors (float `[D]`; a Gymnasium `Discrete` observation as its
  one-hot vector) go to the MLP torso (`--torso=mlp`, `--mlp_layers`,
  `--mlp_units`), which the suites' presets pick for them.

Episode ends keep Gymnasium's distinction: `terminated` (dm_env's
termination, discount 0) ends the return there; `truncated` (a time limit,
dm_env's truncation with discount 1) is bootstrapped with the value of the
episode's last observation (`envs.EnvOutput.truncated`; the actor adds
γ·V(last observation) to that step's return target: Pardo et al., 2018,
"Time Limits in Reinforcement Learning").

Several Gymnasium ids train one agent when their observations and actions
agree. Normalised scores are NaN unless `--reference_scores` gives each
level's random and human (or target) return, e.g.
`--reference_scores=CartPole-v1=22:500`.
"""

from __future__ import annotations

import importlib
import json
import math
from typing import Any, Callable, Mapping, Optional, Sequence

import dm_env
from dm_env import specs
import numpy as np

from impala_tf import suites
from impala_tf.acting import envs

GYMNASIUM = "gymnasium"
DM_ENV = "dm_env"

_OPTIONS = (
    suites.Option("obs_grey", "grey", bool, "Gymnasium/dm_env: image "
                  "observations in grey (luminance)."),
    suites.Option("obs_resize", "resize", str, "Gymnasium/dm_env: resize "
                  "image observations to HxW (nearest pixel), e.g. 84x84."),
    suites.Option("obs_stack", "stack", int, "Gymnasium/dm_env: stack the "
                  "last S image observations (zeros before an episode's "
                  "first)."),
    suites.Option("env_kwargs", "env_kwargs", str, "Gymnasium/dm_env: "
                  "keyword arguments for gymnasium.make or the factory, as "
                  "JSON."),
    suites.Option("reference_scores", "reference_scores", str,
                  "Gymnasium/dm_env: LEVEL=RANDOM:HUMAN[,...], the returns "
                  "that normalised scores (percent) are measured between."),
)


# ------------------------------------------------------------- observations


def _parse_resize(text: Optional[str]) -> Optional[tuple[int, int]]:
  if not text:
    return None
  try:
    height, width = (int(v) for v in text.lower().split("x"))
  except ValueError:
    raise ValueError(f"--obs_resize takes HxW, e.g. 84x84; got {text!r}."
                     ) from None
  if height < 1 or width < 1:
    raise ValueError(f"--obs_resize must be positive, got {text!r}.")
  return height, width


class Observations:
  """Turns an environment's raw observation into the agent's "frame".

  Args:
    shape, dtype: the raw observation's.
    grey, resize, stack: the image options (module docstring).
    one_hot: a discrete observation with this many values, as a one-hot
      vector.
  """

  def __init__(self, shape: Sequence[int], dtype, *, grey: bool = False,
               resize: Optional[tuple[int, int]] = None, stack: int = 1,
               one_hot: Optional[int] = None):
    self.raw_shape = tuple(int(d) for d in shape)
    self.one_hot = one_hot
    dtype = np.dtype(dtype)
    self.image = one_hot is None and dtype == np.uint8 and len(
        self.raw_shape) in (2, 3)
    if not self.image and (grey or resize or stack > 1):
      raise ValueError(
          f"--obs_grey, --obs_resize and --obs_stack apply to image "
          f"observations (uint8 [H, W] or [H, W, C]); this one is {dtype} "
          f"{list(self.raw_shape)}.")
    if not self.image and one_hot is None and len(self.raw_shape) != 1:
      raise ValueError(
          f"Observations must be images (uint8 [H, W(, C)]) or flat vectors "
          f"([D]); got {dtype} {list(self.raw_shape)}. Flatten it in the "
          "environment, or write a suite (docs/architecture.md).")
    self.grey, self.resize, self.stack = grey, resize, int(stack)
    if self.stack < 1:
      raise ValueError(f"--obs_stack must be at least 1, got {stack}.")
    if self.image:
      height, width = resize or self.raw_shape[:2]
      channels = 1 if grey or len(self.raw_shape) == 2 else self.raw_shape[2]
      self._channels = channels
      self.shape = (height, width, channels * self.stack)
      self.dtype = np.dtype(np.uint8)
    else:
      self.shape = (one_hot,) if one_hot is not None else self.raw_shape
      self.dtype = np.dtype(np.float32)
    self._frames: Optional[np.ndarray] = None

  @property
  def frame_stack(self) -> int:
    """The `envs.BatchedEnv.frame_stack` of these observations: S when
    grey stacks can travel as single frames, else 1."""
    return self.stack if self.image and self._channels == 1 else 1

  def _one(self, raw) -> np.ndarray:
    if self.one_hot is not None:
      vector = np.zeros(self.one_hot, np.float32)
      vector[int(raw)] = 1.0
      return vector
    value = np.asarray(raw)
    if not self.image:
      return value.astype(np.float32, copy=False)
    if value.ndim == 2:
      value = value[..., None]
    if self.grey and value.shape[-1] == 3:
      value = np.round(value[..., :3].astype(np.float32) @ np.array(
          [0.299, 0.587, 0.114], np.float32))[..., None].astype(np.uint8)
    if self.resize:
      height, width = self.resize
      rows = (np.arange(height) * value.shape[0] // height)
      cols = (np.arange(width) * value.shape[1] // width)
      value = value[rows][:, cols]
    return value

  def first(self, raw) -> np.ndarray:
    """The agent's observation at an episode's start."""
    frame = self._one(raw)
    if self.image and self.stack > 1:
      self._frames = np.zeros(self.shape, np.uint8)
      self._frames[..., -self._channels:] = frame
      return self._frames.copy()
    return frame

  def next(self, raw) -> np.ndarray:
    """The agent's observation after a step."""
    frame = self._one(raw)
    if self.image and self.stack > 1:
      self._frames = np.concatenate(
          [self._frames[..., self._channels:], frame], axis=-1)
      return self._frames.copy()
    return frame

  def spec(self) -> specs.Array:
    return specs.Array(self.shape, self.dtype, name="frame")


# ------------------------------------------------------------ environments


class _Adapter(dm_env.Environment):
  """What both adapters share: the wrapped environment `_env`, its
  `num_actions` and the `Observations` that make its observations the
  agent's."""

  _env: Any
  _observations: "Observations"
  num_actions: int

  @property
  def frame_stack(self) -> int:
    return self._observations.frame_stack

  def observation_spec(self):
    return self._observations.spec()

  def action_spec(self):
    return specs.DiscreteArray(self.num_actions, np.int32, name="action")

  def close(self):
    self._env.close()


class GymnasiumEnv(_Adapter):
  """A Gymnasium environment with discrete actions as a `dm_env`
  environment (module docstring); `render()` gives its RGB frame."""

  def __init__(self, env_id: str, seed: int = 0, *, grey: bool = False,
               resize: Optional[str] = None, stack: int = 1,
               env_kwargs: Optional[Mapping[str, Any]] = None,
               render_mode: Optional[str] = None):
    import gymnasium  # pylint: disable=g-import-not-at-top
    _register_ale(env_id)
    try:
      self._env = gymnasium.make(env_id, render_mode=render_mode,
                                 **dict(env_kwargs or {}))
    except gymnasium.error.Error as e:
      raise ValueError(f"Gymnasium cannot make {env_id!r}: {e}") from None
    space = self._env.action_space
    if not isinstance(space, gymnasium.spaces.Discrete):
      raise ValueError(f"{env_id} has {type(space).__name__} actions; this "
                       "suite takes discrete ones (gymnasium Discrete).")
    self._action_start = int(space.start)
    self.num_actions = int(space.n)
    observations = self._env.observation_space
    one_hot = (int(observations.n) if isinstance(
        observations, gymnasium.spaces.Discrete) else None)
    if one_hot is None and not isinstance(observations,
                                          gymnasium.spaces.Box):
      raise ValueError(f"{env_id} observes a {type(observations).__name__}; "
                       "this suite takes images, vectors (Box) or a "
                       "Discrete value.")
    self._observations = Observations(
        () if one_hot else observations.shape,
        np.int64 if one_hot else observations.dtype, grey=grey,
        resize=_parse_resize(resize), stack=stack, one_hot=one_hot)
    self._seed = int(seed)
    self._seeded = False
    self._needs_reset = True

  def reset(self) -> dm_env.TimeStep:
    # Seeded once: later episodes continue the environment's own stream.
    raw, _ = self._env.reset(seed=None if self._seeded else self._seed)
    self._seeded = True
    self._needs_reset = False
    return dm_env.restart(self._observations.first(raw))

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    raw, reward, terminated, truncated, _ = self._env.step(
        int(action) + self._action_start)
    observation = self._observations.next(raw)
    reward = np.float32(reward)
    if terminated:
      self._needs_reset = True
      return dm_env.termination(reward, observation)
    if truncated:
      self._needs_reset = True
      return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation)

  def render(self) -> np.ndarray:
    """The environment's RGB frame `[H, W, 3]` uint8 (made with
    render_mode="rgb_array"). Raises `video.VideoUnavailableError` (one
    line) where the environment's own drawing library is missing."""
    import gymnasium  # pylint: disable=g-import-not-at-top
    try:
      return np.asarray(self._env.render())
    except gymnasium.error.DependencyNotInstalled as e:
      from impala_tf.records import video  # pylint: disable=g-import-not-at-top
      raise video.VideoUnavailableError(
          f"--video: {self._env.spec.id} cannot draw its frames on this "
          f"machine: {e}") from None



def _register_ale(env_id: str) -> None:
  """Gymnasium knows the ALE/ ids once ale-py registers them."""
  if env_id.startswith("ALE/"):
    import ale_py  # pylint: disable=g-import-not-at-top
    import gymnasium  # pylint: disable=g-import-not-at-top
    gymnasium.register_envs(ale_py)


class DmEnvObservations(_Adapter):
  """A user's `dm_env` environment, its observations made the agent's
  (module docstring): an array, or a dict with "frame"."""

  def __init__(self, env: dm_env.Environment, *, grey: bool = False,
               resize: Optional[str] = None, stack: int = 1):
    self._env = env
    spec = env.observation_spec()
    if isinstance(spec, Mapping):
      if "frame" not in spec:
        raise ValueError(f"A dict observation needs a 'frame'; got "
                         f"{sorted(spec)}.")
      spec = spec["frame"]
    action = env.action_spec()
    if not isinstance(action, specs.DiscreteArray):
      raise ValueError(f"The environment's action spec is {action!r}; this "
                       "suite takes discrete actions (dm_env "
                       "DiscreteArray).")
    self.num_actions = int(action.num_values)
    self._observations = Observations(spec.shape, spec.dtype, grey=grey,
                                      resize=_parse_resize(resize),
                                      stack=stack)

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    raw = timestep.observation
    raw = raw["frame"] if isinstance(raw, Mapping) else raw
    frame = (self._observations.first(raw) if timestep.first()
             else self._observations.next(raw))
    return timestep._replace(observation=frame)

  def reset(self) -> dm_env.TimeStep:
    return self._convert(self._env.reset())

  def step(self, action) -> dm_env.TimeStep:
    return self._convert(self._env.step(int(action)))

  def render(self) -> np.ndarray:
    render = getattr(self._env, "render", None)
    if render is None:
      from impala_tf.records import video  # pylint: disable=g-import-not-at-top
      raise video.VideoUnavailableError(
          f"--video: this dm_env environment ({type(self._env).__name__}) "
          "has no render() giving its RGB frames.")
    return np.asarray(render())



def load_factory(path: str) -> Callable[..., dm_env.Environment]:
  """The function `package.module:function` names."""
  module_name, sep, function = (path or "").partition(":")
  if not sep or not module_name or not function:
    raise ValueError(f"--env_factory takes package.module:function, got "
                     f"{path!r}.")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ValueError(f"--env_factory: cannot import {module_name!r} ({e})."
                     ) from None
  factory = getattr(module, function, None)
  if not callable(factory):
    raise ValueError(f"--env_factory: {module_name} has no function "
                     f"{function!r}.")
  return factory


# -------------------------------------------------------------------- suites


def _json_kwargs(text: Optional[str]) -> dict:
  if not text:
    return {}
  try:
    value = json.loads(text)
  except ValueError as e:
    raise ValueError(f"--env_kwargs must be a JSON object, e.g. "
                     f"'{{\"size\": 8}}'; got {text!r} ({e}).") from None
  if not isinstance(value, dict):
    raise ValueError(f"--env_kwargs must be a JSON object, got {text!r}.")
  return value


def _reference_scores(text: Optional[str]) -> dict[str, tuple[float, float]]:
  scores = {}
  for entry in filter(None, (text or "").split(",")):
    level, sep, pair = entry.partition("=")
    low, sep2, high = pair.partition(":")
    try:
      scores[level.strip()] = (float(low), float(high))
    except ValueError:
      sep = ""
    if not sep or not sep2 or level.strip() not in scores:
      raise ValueError(f"--reference_scores takes LEVEL=RANDOM:HUMAN[,...], "
                       f"got {text!r}.")
  return scores


class _CustomSuite(suites.Suite):
  """What both suites share: options, presets by observation, batching."""

  default_levels = ()
  envs_per_actor = 8
  action_repeat = 1  # Frames are environment steps.
  options = _OPTIONS
  extra_option_keys = ("render_mode",)

  def __init__(self):
    # level -> (random, human) returns, from --reference_scores as
    # `check_options` last saw them (the run's options).
    self._scores: dict[str, tuple[float, float]] = {}

  def make_one(self, level: str, seed: int,
               options: Mapping[str, Any]) -> dm_env.Environment:
    """One environment of `level`, seeded with `seed`."""
    raise NotImplementedError

  def _probe(self, level: str, options: Mapping[str, Any]):
    env = self.make_one(level, 0, options)
    try:
      return (env.num_actions, env.observation_spec(), env.frame_stack)
    finally:
      env.close()

  def env_spec(self, levels, options):
    probes = {level: self._probe(level, options) for level in levels}
    first = probes[levels[0]]
    for level, probe in probes.items():
      if (probe[0], probe[1].shape, probe[1].dtype) != (
          first[0], first[1].shape, first[1].dtype):
        raise ValueError(
            f"Levels {levels[0]} and {level} differ in actions or "
            f"observations ({first[0]} actions, {first[1].dtype} "
            f"{list(first[1].shape)} against {probe[0]}, {probe[1].dtype} "
            f"{list(probe[1].shape)}); one agent needs them equal.")
    num_actions, spec, frame_stack = first
    return suites.EnvSpec(num_actions, tuple(f"action {i}" for i in range(
        num_actions)), {"frame": (tuple(spec.shape), np.dtype(spec.dtype))},
                          frame_stack)

  def check_options(self, levels, options):
    options = super().check_options(levels, options)
    _json_kwargs(options.get("env_kwargs"))
    _parse_resize(options.get("resize"))
    scores = _reference_scores(options.get("reference_scores"))
    unknown = sorted(set(scores) - set(levels))
    if unknown:
      raise ValueError(f"--reference_scores names {unknown}, which are not "
                       f"among the levels {list(levels)}.")
    self._scores.update(scores)
    return options

  def make_train_env(self, levels, level_ids, seed, options):
    return envs.DmEnvBatch(
        [self.make_one(levels[level], seed + j, options)
         for j, level in enumerate(level_ids)],
        self._probe(levels[0], options)[0])

  def make_eval_env(self, level, num_envs, seed, options):
    return envs.DmEnvBatch(
        [self.make_one(level, seed + j, options) for j in range(num_envs)],
        self._probe(level, options)[0])

  def normalized_score(self, level: str, mean_return: float) -> float:
    if level not in self._scores:
      return math.nan
    low, high = self._scores[level]
    return 100.0 * (mean_return - low) / (high - low)


class Gymnasium(_CustomSuite):
  """`--suite=gymnasium --levels=<Gymnasium ids>` (module docstring)."""

  name = GYMNASIUM
  default_preset = "gymnasium"

  def canonical_level(self, name: str) -> str:
    import gymnasium  # pylint: disable=g-import-not-at-top
    _register_ale(name)
    if name not in gymnasium.registry:
      close = [i for i in gymnasium.registry if name.lower() in i.lower()]
      hint = f" Did you mean {', '.join(sorted(close)[:3])}?" if close else ""
      raise ValueError(f"Gymnasium has no environment {name!r}.{hint}")
    return name

  def resolve_levels(self, levels):
    if not levels:
      raise ValueError("--suite=gymnasium needs --levels=<Gymnasium id>[,...],"
                       " e.g. --levels=CartPole-v1.")
    return super().resolve_levels(levels)

  def preset_for(self, levels) -> str:
    """The MLP preset for vector observations, the shallow Atari agent's
    for images (the first level's, as Gymnasium makes it)."""
    if not levels:
      return self.default_preset
    spec = self._probe(self.canonical_level(levels[0]), {})[1]
    return "gymnasium_image" if len(spec.shape) == 3 else "gymnasium"

  def make_one(self, level, seed, options):
    return GymnasiumEnv(level, seed, grey=bool(options.get("grey")),
                        resize=options.get("resize"),
                        stack=int(options.get("stack") or 1),
                        env_kwargs=_json_kwargs(options.get("env_kwargs")),
                        render_mode=options.get("render_mode"))


class DmEnvFactory(_CustomSuite):
  """`--suite=dm_env --env_factory=package.module:function`: one level,
  named after the factory (module docstring)."""

  name = DM_ENV
  default_preset = "gymnasium"
  options = _OPTIONS + (
      suites.Option("env_factory", "env_factory", str, "dm_env: the "
                    "function that returns the environment, "
                    "package.module:function."),)

  def canonical_level(self, name: str) -> str:
    if name != DM_ENV:
      raise ValueError(f"--suite=dm_env has one level, {DM_ENV!r} (the "
                       f"--env_factory's environment); got {name!r}.")
    return name

  def resolve_levels(self, levels):
    if levels:
      raise ValueError("--suite=dm_env takes its environment from "
                       "--env_factory, not --levels.")
    return (DM_ENV,)  # One level: the factory's environment.

  def check_options(self, levels, options):
    if not options.get("env_factory"):
      raise ValueError("--suite=dm_env needs --env_factory="
                       "package.module:function.")
    return super().check_options(levels, options)

  def make_one(self, level, seed, options):
    del level  # The suite's one level.
    factory = load_factory(options["env_factory"])
    kwargs = _json_kwargs(options.get("env_kwargs"))
    try:
      env = factory(seed=seed, **kwargs)
    except TypeError:
      env = factory(**kwargs)  # A factory without a seed argument.
    return DmEnvObservations(env, grey=bool(options.get("grey")),
                             resize=options.get("resize"),
                             stack=int(options.get("stack") or 1))


GYMNASIUM_SUITE = suites.register(Gymnasium())
DM_ENV_SUITE = suites.register(DmEnvFactory())
