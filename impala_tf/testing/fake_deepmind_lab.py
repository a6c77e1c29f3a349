"""A fake `deepmind_lab` module that follows DeepMind Lab's Python API.

DeepMind Lab is built by its users from sources and is not on the package
index, so the DMLab-30 adapter is tested against this module everywhere
(inject it with
`monkeypatch.setitem(sys.modules, "deepmind_lab", fake_deepmind_lab)` or pass
it as `dmlab30.make(..., engine=fake_deepmind_lab)`), and held to the real
engine where one is installed: tests/dmlab30/test_dmlab_real_engine.py
makes the same calls to both and fails where they disagree.

The API follows DeepMind Lab's docs/users/python_api.md and its C wrapper
python/dmlab_module.c, including the misuse the real module rejects, with the
same exception types:

* `Lab(level, observations, config={}, renderer='software', level_cache=None)`:
  `observations` must be a `list` and `config` a `dict` (TypeError otherwise,
  like `PyArg_ParseTupleAndKeywords` with `O!`); config keys and values must
  be `str` (TypeError); renderer must be 'software' or 'hardware'
  (RuntimeError); an unknown observation name is a ValueError; a level the
  engine cannot load is a RuntimeError at construction. The `_test` scripts of
  DMLab-30 are held out: they load only with `allowHoldOutLevels='true'`.
* `reset(episode=-1, seed=None)`: `seed` must be a Python int or None
  (ValueError, as in the real module, which also rejects NumPy integers).
  Consults the level cache: `fetch(key, pk3_path)` and, on a miss, compiles
  the map and calls `write(key, pk3_path)`; errors raised by the cache
  propagate from `reset`.
* `step(action, num_steps=1)`: `action` must be a `np.ndarray` (TypeError), of
  shape (7,) and dtype `np.intc` (ValueError); stepping when not running is a
  RuntimeError. Returns the reward summed over the frames, and stops early
  when the episode ends inside the repeat.
* `observations()` returns a dict of the requested observations (a RuntimeError
  when not running); `is_running()`, `num_steps()`, `events()`,
  `action_spec()`, `observation_spec()`, `close()` (True the first time, then
  False; afterwards only `is_running()` may be called).
* Module functions `version()`, `runfiles_path()`, `set_runfiles_path(path)`.

Where the real engine's behaviour is undefined (out-of-range action values,
`num_steps < 1`, calls on a closed environment), the fake raises so tests
catch the mistake.

The fake game. It is deterministic so tests can assert exact numbers:

* Every frame gives reward `MOVE_BACK_FORWARD + 10 * FIRE` (forward +1,
  backward -1, fire +10, everything else 0).
* An episode lasts `fakeEpisodeFrames` frames (a level option, like any
  unrecognised config key; default 3600 = 60 s at 60 fps).
* `RGB_INTERLEAVED` is `[height, width, 3]` uint8 filled with
  `(seed + mixerSeed + frames since reset) % 256`.
* `INSTR` is '' on non-language levels; on `language_*` levels it is the
  level option `fakeInstruction` if given, else a sentence chosen by the seed.
* The level cache key is derived from the level, the episode seed and
  `mixerSeed`, so the same seed hits the cache.

Introspection that the real module does not have is prefixed `fake_`: each
`Lab` records its calls in `fake_log`, and the module keeps every `Lab` it
created in `fake_created` (clear it between tests).
"""

import hashlib
import os
import shutil
import tempfile

import numpy as np

_VERSION = "1.0"

_runfiles_path = ""

#: Every Lab constructed (successfully or not), oldest first.
fake_created: list = []

# Level scripts that exist under game_scripts/levels/contributed/dmlab30/ in
# DeepMind Lab's tree (its DMLab-30 README lists them).
_DMLAB30_SCRIPTS = frozenset([
    "rooms_collect_good_objects_train", "rooms_collect_good_objects_test",
    "rooms_exploit_deferred_effects_train",
    "rooms_exploit_deferred_effects_test",
    "rooms_select_nonmatching_object", "rooms_watermaze",
    "rooms_keys_doors_puzzle", "language_select_described_object",
    "language_select_located_object", "language_execute_random_task",
    "language_answer_quantitative_question", "lasertag_one_opponent_small",
    "lasertag_three_opponents_small", "lasertag_one_opponent_large",
    "lasertag_three_opponents_large", "natlab_fixed_large_map",
    "natlab_varying_map_regrowth", "natlab_varying_map_randomized",
    "skymaze_irreversible_path_hard", "skymaze_irreversible_path_varied",
    "psychlab_arbitrary_visuomotor_mapping",
    "psychlab_continuous_recognition", "psychlab_sequential_comparison",
    "psychlab_visual_search", "explore_object_locations_small",
    "explore_object_locations_large", "explore_obstructed_goals_small",
    "explore_obstructed_goals_large", "explore_goal_locations_small",
    "explore_goal_locations_large", "explore_object_rewards_few",
    "explore_object_rewards_many",
])
KNOWN_LEVELS = frozenset("contributed/dmlab30/" + s for s in _DMLAB30_SCRIPTS)

# (name, min, max), the order of DeepMind Lab's action_spec().
_ACTIONS = (
    ("LOOK_LEFT_RIGHT_PIXELS_PER_FRAME", -512, 512),
    ("LOOK_DOWN_UP_PIXELS_PER_FRAME", -512, 512),
    ("STRAFE_LEFT_RIGHT", -1, 1),
    ("MOVE_BACK_FORWARD", -1, 1),
    ("FIRE", 0, 1),
    ("JUMP", 0, 1),
    ("CROUCH", 0, 1),
)

_SENTENCES = (
    "Pick the red object in the blue room.",
    "Get the green hat from the yellow room.",
    "Are all cars blue?",
)

# Status values mirroring dmlab_module.c.
_CLOSED, _UNINITIALIZED, _RUNNING, _TERMINATED = "closed", "uninit", "run", "term"


def version() -> str:
  return _VERSION


def runfiles_path() -> str:
  return _runfiles_path


def set_runfiles_path(path) -> bool:
  global _runfiles_path
  if not isinstance(path, str):
    raise TypeError(f"argument 1 must be str, not {type(path).__name__}")
  _runfiles_path = path
  return True


def _parse_int(key, value):
  try:
    return int(value, 0)
  except ValueError:
    raise RuntimeError(
        f"Failed to apply setting '{key} = {value}' - \"expected an integer\""
    ) from None


class Lab:
  """Fake of `deepmind_lab.Lab` (see the module docstring)."""

  def __init__(self, level, observations, config=None, renderer="software",
               level_cache=None):
    fake_created.append(self)
    self._status = _CLOSED
    self.fake_log = []
    self.fake_maps_compiled = 0
    if not isinstance(level, str):
      raise TypeError(f"argument 1 must be str, not {type(level).__name__}")
    if not isinstance(observations, list):
      raise TypeError(
          f"argument 2 must be list, not {type(observations).__name__}")
    if config is None:
      config = {}
    if not isinstance(config, dict):
      raise TypeError(f"argument 3 must be dict, not {type(config).__name__}")
    if not isinstance(renderer, str):
      raise TypeError(f"argument 4 must be str, not {type(renderer).__name__}")
    for key, value in config.items():
      if not isinstance(key, str) or not isinstance(value, str):
        raise TypeError("bad argument type for built-in operation")
    if renderer not in ("", "software", "hardware"):
      raise RuntimeError(
          'Failed to set renderer must be "hardware" or "software" actual '
          f'"{renderer}"!')
    self.fake_level = level
    self.fake_config = dict(config)
    self.fake_renderer = renderer or "software"
    self._level_cache = level_cache
    self._status = _UNINITIALIZED

    self._width = _parse_int("width", config.get("width", "320"))
    self._height = _parse_int("height", config.get("height", "240"))
    self._mixer_seed = _parse_int("mixerSeed", config.get("mixerSeed", "0"))
    self._episode_frames = _parse_int(
        "fakeEpisodeFrames", config.get("fakeEpisodeFrames", "3600"))
    if self._width < 1 or self._height < 1 or self._episode_frames < 1:
      raise RuntimeError("Failed to init environment - \"width, height and "
                         "fakeEpisodeFrames must be positive\"")
    if level not in KNOWN_LEVELS:
      raise RuntimeError(
          f"Failed to init environment - \"Could not find level script "
          f"'{level}'\"")
    if level.endswith("_test") and config.get("allowHoldOutLevels") != "true":
      # DMLab-30's held-out scripts refuse to load in training mode.
      raise RuntimeError(
          "Failed to init environment - \"This level must only be used "
          "during evaluation. For training, use the *_train.lua version of "
          "the level.\"")
    spec_names = [s["name"] for s in self._spec()]
    for name in observations:
      if not isinstance(name, str):
        raise TypeError("bad argument type for built-in operation")
      if name not in spec_names:
        raise ValueError(f"Unknown observation '{name}'.")
    self._observation_names = list(observations)
    self._episode = 0
    self._num_steps = 0
    self._frames = 0
    self._seed = 0
    self._instruction = ""
    self._scratch = None

  # -- helpers ----------------------------------------------------------------

  def _require_open(self, method):
    if self._status == _CLOSED:
      raise RuntimeError(f"{method}() called on a closed environment; only "
                         f"is_running() is allowed after close().")

  def _spec(self):
    h, w = self._height, self._width
    return [
        {"name": "RGB_INTERLEAVED", "shape": (h, w, 3), "dtype": np.uint8},
        {"name": "RGBD_INTERLEAVED", "shape": (h, w, 4), "dtype": np.uint8},
        {"name": "RGB", "shape": (3, h, w), "dtype": np.uint8},
        {"name": "RGBD", "shape": (4, h, w), "dtype": np.uint8},
        {"name": "INSTR", "shape": (), "dtype": str},
        {"name": "VEL.TRANS", "shape": (3,), "dtype": np.float64},
        {"name": "VEL.ROT", "shape": (3,), "dtype": np.float64},
    ]

  def _is_language_level(self):
    return self.fake_level.startswith("contributed/dmlab30/language_")

  def _load_map(self, seed):
    key = hashlib.sha1(
        f"{self.fake_level}|{seed}|{self._mixer_seed}".encode()).hexdigest()
    content = f"FAKE-PK3 {key}".encode()
    if self._scratch is None:
      self._scratch = tempfile.mkdtemp(prefix="fake_dmlab_")
    pk3_path = os.path.join(self._scratch, key + ".pk3")
    cache = self._level_cache
    if cache is not None and cache.fetch(key, pk3_path):
      with open(pk3_path, "rb") as f:
        if f.read() != content:
          raise RuntimeError(
              f"Failed to start environment - \"level cache returned a "
              f"corrupt map for key {key}\"")
      self.fake_log.append(("map_fetched", key))
      return
    with open(pk3_path, "wb") as f:
      f.write(content)
    self.fake_maps_compiled += 1
    self.fake_log.append(("map_compiled", key))
    if cache is not None:
      cache.write(key, pk3_path)

  # -- deepmind_lab.Lab API -----------------------------------------------------

  def reset(self, episode=-1, seed=None):
    self._require_open("reset")
    if isinstance(episode, bool) or not isinstance(episode, int):
      raise TypeError("'episode' must be an integer")
    if seed is None:
      seed = int(np.random.randint(0, 2**31 - 1))
    elif not isinstance(seed, int):
      raise ValueError(
          f"'seed' must be int or None, was '{type(seed).__name__}'.")
    if episode >= 0:
      self._episode = episode
    self._load_map(seed)
    self.fake_log.append(("reset", self._episode, seed))
    self._seed = seed
    self._frames = 0
    self._num_steps = 0
    self._episode += 1
    if self._is_language_level():
      self._instruction = self.fake_config.get(
          "fakeInstruction", _SENTENCES[seed % len(_SENTENCES)])
    else:
      self._instruction = ""
    self._status = _RUNNING
    return True

  def num_steps(self):
    self._require_open("num_steps")
    return self._num_steps

  def is_running(self):
    return self._status == _RUNNING

  def step(self, action, num_steps=1):
    self._require_open("step")
    if not isinstance(action, np.ndarray):
      raise TypeError(
          f"argument 1 must be numpy.ndarray, not {type(action).__name__}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
      raise TypeError("'num_steps' must be an integer")
    if self._status != _RUNNING:
      raise RuntimeError("Environment in wrong status to advance.")
    if action.ndim != 1 or action.shape[0] != len(_ACTIONS):
      raise ValueError(f"action must have shape ({len(_ACTIONS)})")
    if action.dtype != np.intc:
      raise ValueError("action must have dtype np.intc")
    for value, (name, lo, hi) in zip(action.tolist(), _ACTIONS):
      if not lo <= value <= hi:
        raise ValueError(f"{name} = {value} is outside [{lo}, {hi}] (undefined "
                         f"behaviour in DeepMind Lab).")
    if num_steps < 1:
      raise ValueError(f"num_steps must be at least 1, got {num_steps}.")
    per_frame = float(action[3] + 10 * action[4])
    reward = 0.0
    frames = 0
    while frames < num_steps and self._frames < self._episode_frames:
      reward += per_frame
      frames += 1
      self._frames += 1
    self._num_steps += num_steps
    if self._frames >= self._episode_frames:
      self._status = _TERMINATED
    self.fake_log.append(("step", tuple(action.tolist()), num_steps, reward))
    return reward

  def observation_spec(self):
    self._require_open("observation_spec")
    return self._spec()

  def action_spec(self):
    self._require_open("action_spec")
    return [{"min": lo, "max": hi, "name": name} for name, lo, hi in _ACTIONS]

  def observations(self):
    self._require_open("observations")
    if self._status != _RUNNING:
      raise RuntimeError(
          "Environment in wrong status for call to observations()")
    # The mixer seed changes what a seed generates, as the real engine's
    # does (it mixes into the level's random stream).
    value = (self._seed + self._mixer_seed + self._frames) % 256
    h, w = self._height, self._width
    result = {}
    for name in self._observation_names:
      if name == "INSTR":
        result[name] = self._instruction
      elif name == "RGB_INTERLEAVED":
        result[name] = np.full((h, w, 3), value, np.uint8)
      elif name == "RGBD_INTERLEAVED":
        result[name] = np.full((h, w, 4), value, np.uint8)
      elif name == "RGB":
        result[name] = np.full((3, h, w), value, np.uint8)
      elif name == "RGBD":
        result[name] = np.full((4, h, w), value, np.uint8)
      else:
        result[name] = np.zeros((3,), np.float64)
    return result

  def events(self):
    self._require_open("events")
    if self._status not in (_RUNNING, _TERMINATED):
      raise RuntimeError("Environment in wrong status for call to events()")
    return []

  def close(self):
    if self._status == _CLOSED:
      return False
    self._status = _CLOSED
    if self._scratch is not None:
      shutil.rmtree(self._scratch)
      self._scratch = None
    return True
