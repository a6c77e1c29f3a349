"""The layout of one trajectory, as actors enqueue it and the learner reads it.

See docs/architecture.md for what each field means. A trajectory holds
`T + 1` steps of one environment: step `t` is the network's input at `t` and
the behaviour policy's logits there; step 0 repeats the previous unroll's
step `T`.

Stacked frames (Atari: each observation is the last 4 frames, newest last)
travel without repetition: one newest frame per step, the older frames of
step 0, and a flag where a stack starts afresh (older frames zero, at a new
game). `restore_frames` rebuilds the stacks on the learner. Sending each
frame once cuts the frames' bytes by almost the stack depth, and with them
the actors' packing and sending, the learner's receiving and the queue's
memory (docs/architecture.md gives the sizes).
"""

from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

from impala_tf.agent import networks

# Per-trajectory fields that have no time dimension.
CORE_STATE_FIELDS = ("core_state_c", "core_state_h")
SCALAR_FIELDS = ("level_id", "policy_version", "actor_id")
# Time-indexed fields that are not observations (every trajectory has them).
STEP_FIELDS = ("reward", "done", "prev_action", "behaviour_logits",
               "episode_return", "episode_length", "bootstrap")
# What replaces "frame" when frames are stacked (see the module docstring):
# the newest frame of each step `[T+1, H, W]`, the older frames of step 0
# `[H, W, S-1]` (oldest first), and per step whether the stack started afresh
# (bool `[T+1]`: its older frames are zeros).
STACKED_FRAME_FIELDS = ("newest_frame", "frame_history", "stack_restart")


class FrameStackEncoder:
  """Sends stacked frames as single frames (the module docstring): the
  actor's half of `STACKED_FRAME_FIELDS`, whose other half is
  `restore_frames`.

  Feed it every step's stacked frames `[N, H, W, S]` in order (`encode`);
  it checks at every step that each stack either moved on by one frame or
  started afresh with zeros, which is what the learner assumes when it
  rebuilds them.
  """

  def __init__(self, frame_stack: int):
    self.frame_stack = int(frame_stack)
    self._last_frame: Optional[np.ndarray] = None  # Encoded last.

  def encode(self, frame: np.ndarray, done: np.ndarray) -> dict:
    """{"newest_frame": [N, H, W], "stack_restart": bool [N]} of one step
    whose stacks are `frame` `[N, H, W, S]`; `done` marks new episodes."""
    restart = self._restarts(frame, done)
    self._last_frame = frame
    return {"newest_frame": frame[..., -1], "stack_restart": restart}

  def history(self) -> np.ndarray:
    """`[N, H, W, S-1]`: the older frames of the stacks encoded last (a
    trajectory starting there carries them as "frame_history")."""
    return np.array(self._last_frame[..., :-1])

  def _restarts(self, frame: np.ndarray, done: np.ndarray) -> np.ndarray:
    """bool `[N]`: which stacks start afresh here (older frames all zero).

    Anywhere else the stack must have moved by one frame: its newest-but-one
    frame is the previous step's newest. Raises if neither holds, since the
    learner would then rebuild other frames than the policy saw.
    """
    if self._last_frame is None:  # The first frames: every stack is new.
      candidates = np.ones(len(done), bool)
      moved = np.zeros(len(done), bool)
    else:
      candidates = np.asarray(done, bool)
      moved = (frame[..., -2] == self._last_frame[..., -1]).all(axis=(1, 2))
    restart = np.zeros(len(done), bool)
    if candidates.any():
      restart[candidates] = ~frame[candidates][..., :-1].any(axis=(1, 2, 3))
    bad = np.flatnonzero(~(restart | moved))
    if bad.size:
      raise RuntimeError(
          f"Environment(s) {bad.tolist()}: the stacked frame neither moved "
          "on by one frame nor started afresh with zeros, so it cannot be "
          f"sent as single frames (frame_stack={self.frame_stack}); set "
          "the environment's frame_stack to 1 to send whole stacks.")
    return restart


def specs(unroll_length: int, num_actions: int,
          observation_spec: Mapping[str, tuple], use_lstm: bool,
          frame_stack: int = 1) -> dict[str, tf.TensorSpec]:
  """Field name → `tf.TensorSpec` of one trajectory (no batch dimension).

  Args:
    unroll_length: `T`; every time-indexed field has `T + 1` steps.
    num_actions: size of the action set.
    observation_spec: name → (shape, dtype) per environment, e.g.
      {"frame": ((84, 84, 4), np.uint8)}.
    use_lstm: whether the trajectory carries the initial LSTM state.
    frame_stack: S > 1 when "frame" `[H, W, S]` stacks the last S frames;
      then it travels as `STACKED_FRAME_FIELDS`.
  """
  steps = unroll_length + 1
  result = {
      name: tf.TensorSpec([steps, *shape], tf.as_dtype(dtype), name=name)
      for name, (shape, dtype) in observation_spec.items()}
  if frame_stack > 1:
    shape, dtype = observation_spec["frame"]
    if len(shape) != 3 or shape[-1] != frame_stack:
      raise ValueError(
          f"frame_stack={frame_stack} needs a frame [H, W, {frame_stack}], "
          f"got {list(shape)}.")
    height, width, _ = shape
    del result["frame"]
    result.update(
        newest_frame=tf.TensorSpec([steps, height, width], dtype,
                                   name="newest_frame"),
        frame_history=tf.TensorSpec([height, width, frame_stack - 1], dtype,
                                    name="frame_history"),
        stack_restart=tf.TensorSpec([steps], tf.bool, name="stack_restart"))
  result.update(
      reward=tf.TensorSpec([steps], tf.float32, name="reward"),
      done=tf.TensorSpec([steps], tf.bool, name="done"),
      prev_action=tf.TensorSpec([steps], tf.int32, name="prev_action"),
      behaviour_logits=tf.TensorSpec([steps, num_actions], tf.float32,
                                     name="behaviour_logits"),
      level_id=tf.TensorSpec([], tf.int32, name="level_id"),
      policy_version=tf.TensorSpec([], tf.int64, name="policy_version"),
      # The index of the actor that made it (how the learner counts the
      # actors it hears from).
      actor_id=tf.TensorSpec([], tf.int32, name="actor_id"),
      episode_return=tf.TensorSpec([steps], tf.float32,
                                   name="episode_return"),
      episode_length=tf.TensorSpec([steps], tf.int32, name="episode_length"),
      # γ·V(the last observation) of an episode truncated at this step (a
      # time limit), 0 elsewhere: the learner adds it to the step's clipped
      # reward, so the return goes on past the cut (`envs.EnvOutput`).
      bootstrap=tf.TensorSpec([steps], tf.float32, name="bootstrap"),
  )
  if use_lstm:
    for name in CORE_STATE_FIELDS:
      result[name] = tf.TensorSpec([networks.CORE_SIZE], tf.float32,
                                   name=name)
  return result


def is_time_indexed(name: str) -> bool:
  return name not in CORE_STATE_FIELDS + SCALAR_FIELDS + ("frame_history",)


def restore_frames(batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Rebuilds "frame" `[B, T+1, H, W, S]` from `STACKED_FRAME_FIELDS`.

  Channel `k` of step `t` is the newest frame of step `t - (S-1-k)` (from
  "frame_history" before step 0), or zero when the stack restarted at a step
  after that frame and up to `t`. A batch without stacked frames is returned
  as it is. Works eagerly and in a `tf.function`.
  """
  if "newest_frame" not in batch:
    return dict(batch)
  result = {k: v for k, v in batch.items() if k not in STACKED_FRAME_FIELDS}
  newest = batch["newest_frame"]                        # [B, T+1, H, W]
  history = tf.transpose(batch["frame_history"], [0, 3, 1, 2])
  restart = batch["stack_restart"]                      # [B, T+1]
  older = history.shape[1]
  steps = tf.shape(newest)[1]
  frames = tf.concat([history, newest], axis=1)         # [B, S-1+T+1, H, W]
  # Channel k of step t: frames[t + k], from `age` = S-1-k steps back.
  windows = tf.range(steps)[:, None] + tf.range(older + 1)[None, :]
  stacks = tf.gather(frames, windows, axis=1)           # [B, T+1, S, H, W]
  # A frame `age` steps old is gone if the stack restarted in the last `age`
  # steps (restarts before step 0 are already zeros in the history).
  padded = tf.pad(restart, [[0, 0], [older, 0]])
  restarted_within = [tf.zeros_like(restart)]           # age 0: the newest.
  for age in range(1, older + 1):
    start = older + 1 - age  # padded[start + t] is restart[t - (age - 1)].
    restarted_within.append(tf.logical_or(
        restarted_within[-1], padded[:, start:start + steps]))
  gone = tf.stack(restarted_within[::-1], axis=-1)      # [B, T+1, S]
  stacks = tf.where(gone[:, :, :, None, None], tf.zeros_like(stacks), stacks)
  # Channels last, as the network reads them. Compile this function with XLA
  # (`jit_compile`): TF's own kernels for the byte-wise gather and transpose
  # are several times slower (docs/benchmarks.md).
  result["frame"] = tf.transpose(stacks, [0, 1, 3, 4, 2])
  return result


def to_time_major(batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Swaps `[B, T+1, ...]` to `[T+1, B, ...]` for the time-indexed fields."""
  result = {}
  for name, value in batch.items():
    if is_time_indexed(name):
      perm = [1, 0] + list(range(2, value.shape.rank))
      value = tf.transpose(value, perm)
    result[name] = value
  return result


def observation_names(batch: Mapping[str, object]) -> list[str]:
  """The observation fields of a trajectory batch ("frame", "instruction")."""
  known = (STEP_FIELDS + CORE_STATE_FIELDS + SCALAR_FIELDS +
           STACKED_FRAME_FIELDS)
  return sorted(name for name in batch if name not in known)
