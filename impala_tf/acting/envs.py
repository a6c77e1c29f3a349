"""The batched-environment contract that actors step, and an adapter from dm_env.

An actor steps `N` environments in lockstep and needs, per step, the next
observation, the raw reward, whether a new training episode started, and the
score of any game that just finished. Atari provides this in C++ (ale-py's
vector environment, see `atari57`); everything that speaks `dm_env` (DMLab, the
test environments) gets it from `DmEnvBatch`.
"""

import concurrent.futures
from typing import Mapping, NamedTuple, Optional, Protocol, Sequence

import dm_env
import numpy as np


class EnvOutput(NamedTuple):
  """What a batched environment returns after `reset()` and every `step()`.

  Attributes:
    observation: dict of arrays with a leading `[N]` dimension: "frame" uint8
      `[N, H, W, C]`; DMLab adds "instruction" int32 `[N, L]`.
    reward: float32 `[N]`, the raw (unclipped) reward of the step that led
      here; 0 after a reset.
    done: bool `[N]`, this observation starts a new training episode. All True
      after `reset()`. Environments reset themselves: the step that ends an
      episode returns the first observation of the next one with `done=True`
      and the final reward (the convention of the paper's code).
    episode_return: float32 `[N]`, the full unclipped score of a game that
      ended with this step, NaN elsewhere.
    episode_length: int32 `[N]`, that game's length in agent steps, 0
      elsewhere.
    truncated: bool `[N]` or None: the episode that ended with this step was
      cut short (a time limit, not an end of the task), so its return goes
      on past its last observation; None: no episode is ever truncated
      (Atari and DMLab treat their time limits as ends, as the paper does).
    final_observation: where `truncated`, that episode's last observation
      (`observation` holds the next episode's first); None with
      `truncated` None.
  """
  observation: Mapping[str, np.ndarray]
  reward: np.ndarray
  done: np.ndarray
  episode_return: np.ndarray
  episode_length: np.ndarray
  truncated: Optional[np.ndarray] = None
  final_observation: Optional[Mapping[str, np.ndarray]] = None


class BatchedEnv(Protocol):
  """`N` environments stepped together (see `EnvOutput`)."""

  num_envs: int
  num_actions: int
  # Per environment, without the [N] dimension: name -> (shape, dtype).
  observation_spec: Mapping[str, tuple[tuple[int, ...], np.dtype]]
  # S > 1 when "frame" [H, W, S] holds the last S frames, newest last, moving
  # on by one frame every step and starting afresh with zeros in the older
  # frames at a new game (ale-py's stacking); actors then send each frame
  # once. 1 otherwise.
  frame_stack: int

  def reset(self) -> EnvOutput:
    ...

  def step(self, actions: np.ndarray) -> EnvOutput:
    ...

  def close(self) -> None:
    ...


def _as_observation_dict(observation) -> Mapping[str, np.ndarray]:
  if isinstance(observation, Mapping):
    return observation
  return {"frame": observation}


class DmEnvBatch:
  """Steps a list of `dm_env.Environment`s as one `BatchedEnv`.

  Each environment runs in its own thread (DMLab releases the GIL while it
  renders), resets itself when its episode ends, and the batch reports the
  undiscounted sum of raw rewards of every finished episode. An episode
  that ends with dm_env's truncation (a last step with a discount other
  than 0) is reported as `truncated`, with its last observation.

  A `dm_env` environment whose observation is an array is presented as
  {"frame": array}; one whose observation is a dict is passed through.
  """

  def __init__(self, envs: Sequence[dm_env.Environment], num_actions: int):
    if not envs:
      raise ValueError("DmEnvBatch needs at least one environment, got none.")
    self._envs = list(envs)
    self.num_envs = len(self._envs)
    self.num_actions = int(num_actions)
    # An environment that stacks frames as ale-py does says so.
    self.frame_stack = int(getattr(self._envs[0], "frame_stack", 1))
    spec = self._envs[0].observation_spec()
    spec = _as_observation_dict(spec)
    self.observation_spec = {
        name: (tuple(s.shape), np.dtype(s.dtype)) for name, s in spec.items()}
    self._last_frames: list = [None] * self.num_envs
    self._returns = np.zeros(self.num_envs, np.float64)
    self._lengths = np.zeros(self.num_envs, np.int64)
    self._pool = (concurrent.futures.ThreadPoolExecutor(self.num_envs)
                  if self.num_envs > 1 else None)

  def _map(self, fn, *args):
    if self._pool is None:
      return [fn(*a) for a in zip(*args)]
    return list(self._pool.map(fn, *args))

  def reset(self) -> EnvOutput:
    timesteps = self._map(lambda env: env.reset(), self._envs)
    self._returns[:] = 0
    self._lengths[:] = 0
    n = self.num_envs
    return self._stack(timesteps, np.zeros(n, np.float32), np.ones(n, bool),
                       np.full(n, np.nan, np.float32), np.zeros(n, np.int32))

  def step(self, actions: np.ndarray) -> EnvOutput:
    actions = np.asarray(actions)
    if actions.shape != (self.num_envs,):
      raise ValueError(
          f"actions must have shape [{self.num_envs}], got {actions.shape}.")

    def step_one(env, action):
      timestep = env.step(int(action))
      if timestep.last():
        return timestep, env.reset()
      return timestep, None

    results = self._map(step_one, self._envs, actions)
    n = self.num_envs
    reward = np.zeros(n, np.float32)
    done = np.zeros(n, bool)
    truncated = np.zeros(n, bool)
    episode_return = np.full(n, np.nan, np.float32)
    episode_length = np.zeros(n, np.int32)
    timesteps = []
    for i, (timestep, restart) in enumerate(results):
      r = float(timestep.reward or 0.0)
      reward[i] = r
      self._returns[i] += r
      self._lengths[i] += 1
      if restart is not None:
        done[i] = True
        # dm_env's truncation: a last step whose discount is not 0.
        truncated[i] = bool(timestep.discount)
        episode_return[i] = self._returns[i]
        episode_length[i] = self._lengths[i]
        self._returns[i] = 0
        self._lengths[i] = 0
        timesteps.append(restart)
      else:
        timesteps.append(timestep)
    output = self._stack(timesteps, reward, done, episode_return,
                         episode_length)
    if not truncated.any():
      return output._replace(truncated=truncated)
    finals = [timestep if cut else now for (timestep, _), cut, now in
              zip(results, truncated, timesteps)]
    return output._replace(truncated=truncated,
                           final_observation=self._stack(finals).observation)

  def _stack(self, timesteps, *fields):
    observations = [_as_observation_dict(t.observation) for t in timesteps]
    if fields:
      self._last_frames = [o["frame"] for o in observations]
    observation = {name: np.stack([o[name] for o in observations])
                   for name in self.observation_spec}
    return EnvOutput(observation, *fields) if fields else EnvOutput(
        observation, None, None, None, None)

  def render(self) -> list[np.ndarray]:
    """Each environment's picture now, for videos: its `render()` where it
    has one (Gymnasium's RGB frame), else its image observation (DMLab's
    RGB frame, Catch's board)."""
    pictures = []
    for env, frame in zip(self._envs, self._last_frames):
      render = getattr(env, "render", None)
      pictures.append(render() if render is not None else frame)
    return pictures

  def close(self) -> None:
    for env in self._envs:
      env.close()
    if self._pool is not None:
      self._pool.shutdown(wait=False)
