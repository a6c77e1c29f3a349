"""Atari environments on ale-py: a batched one for actors and a dm_env one.

Both run ale-py's C++ vector environment (`ale_py.vector_env.AtariVectorEnv`),
which does the paper's preprocessing (Table G.1) in C++ worker threads: action
repeat 4 with a max over the last two frames, 84x84 grayscale (area
interpolation), 4 stacked frames, random no-op starts and the episode cap.
This module only reorders axes to channels-last, presents the same 18
actions in every game when the full set is asked for, and keeps the
score of whole games.

How the C++ environment is configured, and why (checked on ale-py 0.12.1):

* `autoreset_mode=SAME_STEP`: the step that ends a game returns the first
  observation of the next game, which is the `EnvOutput` contract
  (docs/architecture.md). With NEXT_STEP the following step would be a reset
  that ignores the agent's action.
* `episodic_life=False, life_loss_info=True`: a lost life is reported as
  `terminated=True` while the game goes on (episode frame numbers keep rising,
  no reset). With `episodic_life=True` ale-py would reset the whole game at a
  lost life, and the full-game score would be lost.
* `reward_clipping=False`: the C++ clip replaces the reward in place and
  `info` carries no raw reward, so the game score could not be recovered.
  When clipping is asked for, it is done here in numpy after the raw reward
  has been added to the score.

A game is over when the C++ environment resets it, which in SAME_STEP mode
leaves these traces: `truncated` (episode cap), or `terminated` together with
an episode frame number that did not advance (the reset restarts it at the
no-op count) or lives that did not drop (after a reset they are the new
game's; a life-loss terminal always lowers them, by ale-py's definition).
"""

import dataclasses
from typing import Optional

import dm_env
from dm_env import specs
import numpy as np
from ale_py import vector_env as ale_vector_env
from gymnasium.vector import AutoresetMode

from atari57 import games as games_lib
from impala_tf.acting import envs

# Table G.1: 84x84 grayscale, 4 stacked frames, action repeat 4.
FRAME_SHAPE = (84, 84, 4)
ACTION_REPEAT = 4
FULL_ACTION_SET_SIZE = 18


@dataclasses.dataclass(frozen=True)
class AtariOptions:
  """How an Atari game is played. Defaults follow the paper's Table G.1.

  Attributes:
    full_action_space: False: the game's minimal action set (the experts of
      Table G.1); True: all 18 joystick actions (the multi-task agent), in
      `FULL_ACTION_NAMES` order for every game.
    repeat_action_probability: sticky actions; 0.0 in the paper, 0.25 in
      Machado et al. (2018).
    life_loss_terminal: a lost life ends the *training* episode (Table G.1):
      the batched env sets `done`, the dm_env gives discount 0. The game goes
      on and the reported score is always that of the whole game.
    clip_rewards: clip rewards to [-1, 1] in the environment. Off by default
      because the agent clips (docs/architecture.md: the network clips the
      raw reward itself), which is where Table G.1's clipping is applied;
      turning it on makes `EnvOutput.reward` clipped, the score stays raw.
    noop_max: ale-py's random no-op start: a uniform number of 0 to
      `noop_max - 1` NOOP *frames* (not agent steps; checked on ale-py
      0.12.1) after each reset, 0 disables.
      `atari57.evaluation` uses its own 1-30 no-op agent steps instead.
    max_episode_frames: episodes are truncated after this many emulator
      frames (108,000 = 30 minutes at 60 Hz).
    fire_reset: press FIRE once at reset in games that need it to start. Not
      part of the paper's setup, so off.
    render_mode: "rgb_array" also plays every game on a second emulator
      with the same seed and actions, in the emulator's full-colour frames
      (210x160), for videos (`AtariBatchedEnv.render`); None otherwise.
  """
  full_action_space: bool = False
  repeat_action_probability: float = 0.0
  life_loss_terminal: bool = True
  clip_rewards: bool = False
  noop_max: int = 30
  max_episode_frames: int = 108_000
  fire_reset: bool = False
  render_mode: Optional[str] = None

  def __post_init__(self):
    if self.render_mode not in (None, "rgb_array"):
      raise ValueError(f"render_mode must be None or 'rgb_array', got "
                       f"{self.render_mode!r}.")
    if not 0.0 <= self.repeat_action_probability <= 1.0:
      raise ValueError(
          "repeat_action_probability must be in [0, 1] (0.25 for Machado et "
          f"al.'s sticky actions), got {self.repeat_action_probability}.")
    if self.noop_max < 0:
      raise ValueError(f"noop_max must be >= 0 (0 disables no-op starts), got "
                       f"{self.noop_max}.")
    if self.max_episode_frames <= 0:
      raise ValueError("max_episode_frames must be a positive number of "
                       f"frames (108000 in the paper), got "
                       f"{self.max_episode_frames}.")


# The emulator's own frames, in colour and as the screen shows them (the
# last frame of each agent step, not the max over two the agent sees):
# what `render_mode="rgb_array"` records.
FULL_COLOUR = dict(img_height=210, img_width=160, grayscale=False,
                   stack_num=1, maxpool=False)


def _vector_env(game: str, num_envs: int, options: AtariOptions,
                num_threads: int, **frames) -> ale_vector_env.AtariVectorEnv:
  shape = dict(img_height=FRAME_SHAPE[0], img_width=FRAME_SHAPE[1],
               grayscale=True, stack_num=FRAME_SHAPE[2], maxpool=True)
  shape.update(frames)
  return ale_vector_env.AtariVectorEnv(
      game,
      num_envs,
      num_threads=num_threads,
      max_num_frames_per_episode=options.max_episode_frames,
      repeat_action_probability=options.repeat_action_probability,
      full_action_space=options.full_action_space,
      autoreset_mode=AutoresetMode.SAME_STEP,
      frameskip=ACTION_REPEAT,
      noop_max=options.noop_max,
      episodic_life=False,
      life_loss_info=True,
      reward_clipping=False,
      use_fire_reset=options.fire_reset,
      **shape)


def _env_seeds(seed: int, num_envs: int) -> np.ndarray:
  # ale-py's own integer seeding gives env i the seed `seed + i`, so two
  # batches seeded 0 and 1 would share all but one stream. SeedSequence gives
  # independent streams; ALE takes a non-negative C int.
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
  state = np.random.SeedSequence(int(seed)).generate_state(num_envs)
  return (state & 0x7FFFFFFF).astype(np.int64)


def _game_over(terminated, truncated, lives, previous_lives, frame_number,
               previous_frame_number):
  """Which environments ale-py reset in this step (see the module docstring).

  All arguments are `[N]` arrays; `frame_number` is ale-py's
  `episode_frame_number`. Returns bool `[N]`.
  """
  was_reset = (frame_number <= previous_frame_number) | (
      lives >= previous_lives)
  return truncated | (terminated & was_reset)


# The 18 joystick actions in ALE's order (ale_py.Action values 0..17).
FULL_ACTION_NAMES = (
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT",
    "DOWNRIGHT", "DOWNLEFT", "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE",
    "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE")
assert len(FULL_ACTION_NAMES) == FULL_ACTION_SET_SIZE


def _action_set(vector_env: ale_vector_env.AtariVectorEnv, full: bool):
  """The agent's action names and, if needed, the map to ale-py's indices.

  Returns:
    (names, index_map): `names[a]` is the joystick action of agent action
    `a`; `index_map` is None when agent actions are ale-py's indices, else an
    int32 [18] array giving ale-py's index of each of the 18 actions.
  """
  names = tuple(action.name for action in vector_env.ale.get_action_set())
  if not full or names == FULL_ACTION_NAMES:
    return names, None
  # ale-py 0.12 narrows the "full" (legal) set of some ROMs: skiing has 9
  # actions, none with FIRE. The multi-task agent of Table G.1 needs the same
  # 18 actions in every game, so a FIRE combination the ROM ignores is played
  # as the same direction without FIRE (FIRE alone as NOOP), which is what
  # the button does in such a game.
  index_of = {name: i for i, name in enumerate(names)}
  index_map = []
  for name in FULL_ACTION_NAMES:
    if name not in index_of:
      name = name.replace("FIRE", "") or "NOOP"
    if name not in index_of:
      raise ValueError(f"ale-py's full action set {names} lacks {name}; "
                       "cannot present the 18 joystick actions.")
    index_map.append(index_of[name])
  return FULL_ACTION_NAMES, np.array(index_map, np.int32)


class AtariBatchedEnv:
  """`num_envs` copies of one game stepped in lockstep (an `envs.BatchedEnv`).

  `reset()` and `step(actions)` return an `envs.EnvOutput` with `N = num_envs`:

    observation: {"frame": uint8 [N, 84, 84, 4]}, the 4 most recent frames,
      oldest first (channels-last; a transposed view of ale-py's fresh
      channels-first array, so no copy is made here).
    reward: float32 [N], the game's reward for this agent step (the sum over
      its 4 frames), raw unless `options.clip_rewards`.
    done: bool [N], this observation starts a new training episode: True
      after `reset()`, at every game over and, with
      `options.life_loss_terminal`, at every lost life.
    episode_return: float32 [N], at a game over the unclipped score of the
      whole game (all lives, including the step that ended it); NaN
      elsewhere, including at life-loss `done`s.
    episode_length: int32 [N], at a game over the agent steps of that game,
      0 elsewhere.

  Each environment resets itself: the step that ends a game returns the first
  observation of the next game (after its random no-ops) with `done=True` and
  the final step's reward. Episodes are truncated at
  `options.max_episode_frames`; a truncated game also counts as a game over.
  """

  def __init__(self, game: str, num_envs: int, seed: int = 0,
               options: Optional[AtariOptions] = None, num_threads: int = 0):
    """Builds the C++ environments (they start playing at `reset()`).

    Args:
      game: one of `atari57.GAMES`, in any accepted spelling.
      num_envs: N, the number of games played in parallel.
      seed: environment i is seeded from `SeedSequence(seed)`; the same seed
        gives the same games for the same actions.
      options: `AtariOptions`; the paper's by default.
      num_threads: C++ worker threads; 0 lets ale-py use min(N, cores).
    """
    if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
      raise ValueError(f"num_envs must be a positive int, got {num_envs!r}.")
    self.game = games_lib.canonical_name(game)
    self.options = options if options is not None else AtariOptions()
    self.num_envs = int(num_envs)
    self._seeds = _env_seeds(seed, self.num_envs)
    self._env = _vector_env(self.game, self.num_envs, self.options,
                            num_threads)
    # The same games in colour, for videos: ALE is deterministic for the
    # same seed and actions (no sticky actions here unless asked).
    self._colour = (_vector_env(self.game, self.num_envs, self.options,
                                num_threads, **FULL_COLOUR)
                    if self.options.render_mode == "rgb_array" else None)
    self._colour_frames = None
    self.action_names, self._action_map = _action_set(
        self._env, self.options.full_action_space)
    self.num_actions = len(self.action_names)
    self.observation_spec = {"frame": (FRAME_SHAPE, np.dtype(np.uint8))}
    # ale-py's stack: the last 4 frames, zeros before a game's first.
    self.frame_stack = FRAME_SHAPE[2]
    self._seeded = False
    self._returns = np.zeros(self.num_envs, np.float64)
    self._lengths = np.zeros(self.num_envs, np.int64)
    self._lives = None
    self._frame_numbers = None

  def reset(self) -> envs.EnvOutput:
    """Starts a new game in every environment.

    The first call seeds the environments; later calls continue their random
    streams (so repeated resets give different no-op starts).
    """
    seed = None if self._seeded else self._seeds
    self._seeded = True
    obs, info = self._env.reset(seed=seed)
    if self._colour is not None:
      self._colour_frames = self._colour.reset(seed=seed)[0]
    self._lives = info["lives"]
    self._frame_numbers = info["episode_frame_number"]
    self._returns[:] = 0
    self._lengths[:] = 0
    n = self.num_envs
    return envs.EnvOutput(
        observation={"frame": obs.transpose(0, 2, 3, 1)},
        reward=np.zeros(n, np.float32),
        done=np.ones(n, bool),
        episode_return=np.full(n, np.nan, np.float32),
        episode_length=np.zeros(n, np.int32))

  def step(self, actions: np.ndarray) -> envs.EnvOutput:
    """Plays one agent step (4 frames) in every environment.

    Args:
      actions: int [N], indices into the action set (`action_names`).
    """
    if self._lives is None:
      raise RuntimeError("AtariBatchedEnv.step() called before reset().")
    actions = np.asarray(actions)
    if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
      raise ValueError(f"actions must be an int array of shape "
                       f"[{self.num_envs}], got {actions.dtype} "
                       f"{actions.shape}.")
    if actions.min() < 0 or actions.max() >= self.num_actions:
      raise ValueError(f"actions must be in [0, {self.num_actions}) for "
                       f"{self.game!r} with this action set, got {actions}.")
    if self._action_map is not None:
      actions = self._action_map[actions]
    obs, reward, terminated, truncated, info = self._env.step(
        actions.astype(np.int32, copy=False))
    if self._colour is not None:
      self._colour_frames = self._colour.step(
          actions.astype(np.int32, copy=False))[0]
    lives = info["lives"]
    frame_numbers = info["episode_frame_number"]
    game_over = _game_over(terminated, truncated, lives, self._lives,
                           frame_numbers, self._frame_numbers)
    self._lives = lives
    self._frame_numbers = frame_numbers

    reward = reward.astype(np.float32)
    self._returns += reward
    self._lengths += 1
    episode_return = np.where(game_over, self._returns,
                              np.nan).astype(np.float32)
    episode_length = np.where(game_over, self._lengths, 0).astype(np.int32)
    self._returns[game_over] = 0
    self._lengths[game_over] = 0

    if self.options.life_loss_terminal:
      done = terminated | truncated
    else:
      done = game_over
    if self.options.clip_rewards:
      reward = np.clip(reward, -1.0, 1.0)
    return envs.EnvOutput(
        observation={"frame": obs.transpose(0, 2, 3, 1)},
        reward=reward,
        done=done,
        episode_return=episode_return,
        episode_length=episode_length)

  def render(self) -> np.ndarray:
    """uint8 `[N, 210, 160, 3]`: every game's current frame in the
    emulator's colours (made with `render_mode="rgb_array"`)."""
    if self._colour is None:
      raise ValueError("This environment was made without "
                       "render_mode='rgb_array', so it has no colour "
                       "frames.")
    return self._colour_frames.reshape(self.num_envs, 210, 160, 3)

  def close(self) -> None:
    self._env.close()
    if self._colour is not None:
      self._colour.close()


class AtariEnvironment(dm_env.Environment):
  """One Atari game as a `dm_env.Environment`; an episode is a whole game.

  Observations are uint8 `[84, 84, 4]` (4 stacked frames, oldest first).
  Rewards are the game's reward per agent step (4 frames), clipped to [-1, 1]
  if `options.clip_rewards`. With `options.life_loss_terminal`, the step that
  loses a life (but not the last) is a MID step with discount 0.0, the cut
  Table G.1 asks for; the game continues. The last step of a game is LAST
  with discount 0.0 (game over) or 1.0 (truncated at the frame cap), and its
  observation is the game's final frame stack. `episode_return` is the
  unclipped score of the current (or just finished) game.
  """

  def __init__(self, game: str, seed: int = 0,
               options: Optional[AtariOptions] = None):
    self.game = games_lib.canonical_name(game)
    self.options = options if options is not None else AtariOptions()
    self._seed = _env_seeds(seed, 1)
    self._env = _vector_env(self.game, 1, self.options, num_threads=1)
    self.action_names, self._action_map = _action_set(
        self._env, self.options.full_action_space)
    self.num_actions = len(self.action_names)
    self._seeded = False
    self._needs_reset = True
    self._lives = None
    self._frame_number = None
    self.episode_return = 0.0
    self.episode_length = 0

  @property
  def lives(self) -> int:
    """Lives left in the current game (0 in games without lives)."""
    if self._lives is None:
      raise RuntimeError("AtariEnvironment.lives read before reset().")
    return int(self._lives[0])

  def reset(self) -> dm_env.TimeStep:
    seed = None if self._seeded else self._seed
    self._seeded = True
    obs, info = self._env.reset(seed=seed)
    self._lives = info["lives"]
    self._frame_number = info["episode_frame_number"]
    self._needs_reset = False
    self.episode_return = 0.0
    self.episode_length = 0
    return dm_env.restart(obs[0].transpose(1, 2, 0))

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    if isinstance(action, np.ndarray):
      action = action.item() if action.size == 1 else action
    if (not isinstance(action, (int, np.integer)) or
        not 0 <= action < self.num_actions):
      raise ValueError(f"action must be an int in [0, {self.num_actions}) "
                       f"for {self.game!r} with this action set, got "
                       f"{action!r}.")
    if self._action_map is not None:
      action = self._action_map[action]
    obs, reward, terminated, truncated, info = self._env.step(
        np.array([action], np.int32))
    lives = info["lives"]
    frame_number = info["episode_frame_number"]
    game_over = bool(_game_over(terminated, truncated, lives, self._lives,
                                frame_number, self._frame_number)[0])
    self._lives = lives
    self._frame_number = frame_number
    raw_reward = float(reward[0])
    self.episode_return += raw_reward
    self.episode_length += 1
    reward = (float(np.clip(raw_reward, -1.0, 1.0))
              if self.options.clip_rewards else raw_reward)
    if game_over:
      self._needs_reset = True
      # ale-py has already started the next game; the ended game's last
      # frames are in "final_obs".
      final = info["final_obs"][0].transpose(1, 2, 0)
      if terminated[0]:
        return dm_env.termination(reward, final)
      return dm_env.truncation(reward, final)
    discount = (0.0 if self.options.life_loss_terminal and terminated[0]
                else 1.0)
    return dm_env.transition(reward, obs[0].transpose(1, 2, 0), discount)

  def observation_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(FRAME_SHAPE, np.uint8, 0, 255, name="frame")

  def action_spec(self) -> specs.DiscreteArray:
    return specs.DiscreteArray(self.num_actions, name="action")

  def close(self) -> None:
    self._env.close()


def make(game: str, seed: int = 0, **options) -> AtariEnvironment:
  """A single Atari game as a `dm_env.Environment` (for evaluation, tests).

  Args:
    game: one of `atari57.GAMES`, in any accepted spelling.
    seed: seeds the emulator and the no-op starts.
    **options: fields of `AtariOptions` to change from the paper's defaults.
  """
  return AtariEnvironment(game, seed, AtariOptions(**options))


def make_batched(game: str, num_envs: int, seed: int = 0, *,
                 num_threads: int = 0, **options) -> AtariBatchedEnv:
  """`num_envs` copies of a game as an `envs.BatchedEnv` (for actors).

  Args:
    game: one of `atari57.GAMES`, in any accepted spelling.
    num_envs: N, games played in lockstep.
    seed: seeds the N emulators and their no-op starts (independent streams).
    num_threads: C++ worker threads; 0 lets ale-py use min(N, cores).
    **options: fields of `AtariOptions` to change from the paper's defaults.
  """
  return AtariBatchedEnv(game, num_envs, seed, AtariOptions(**options),
                         num_threads)
