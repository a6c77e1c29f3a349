"""Experience replay on the learner (the paper's Table D.3 and Sec. 5.2.2).

Trajectories are kept as actors send them (the queue's layout, stacked
Atari frames once per step), in NumPy arrays on the learner's host: a ring
of `capacity` trajectories, the oldest evicted first (FIFO), sampled
uniformly. A replayed trajectory keeps everything it was sent with, its
behaviour logits included, so every off-policy correction sees the μ that
really acted.
"""

from typing import Mapping

import numpy as np

from impala_tf.config import errors


class ReplayMemoryError(errors.RunError):
  """A full replay buffer would not fit in this machine's memory."""


def bytes_per_trajectory(specs: Mapping[str, object]) -> int:
  """Bytes of one trajectory of `specs` (field → `tf.TensorSpec`)."""
  return int(sum(s.shape.num_elements() * s.dtype.size
                 for s in specs.values()))


def available_memory_bytes(path: str = "/proc/meminfo") -> int:
  """MemAvailable of this machine (0 where unknown)."""
  try:
    with open(path) as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass  # Not Linux: unknown, and the check below is skipped.
  return 0


def check_fits(specs: Mapping[str, object], capacity: int,
               available: int = None) -> int:
  """Raises `ReplayMemoryError`, with the figures, if `capacity`
  trajectories need more than the available memory; returns the bytes."""
  needed = capacity * bytes_per_trajectory(specs)
  available = available_memory_bytes() if available is None else available
  if available and needed > available:
    raise ReplayMemoryError(
        f"--replay_capacity={capacity:,} needs {needed / 2**30:.1f} GiB "
        f"({bytes_per_trajectory(specs) / 1e3:,.0f} kB per trajectory) but "
        f"this machine has {available / 2**30:.1f} GiB available; lower "
        f"--replay_capacity to at most "
        f"{available // bytes_per_trajectory(specs):,}.")
  return needed


class ReplayBuffer:
  """A FIFO ring of trajectories with uniform sampling (module docstring).

  Args:
    specs: field → `tf.TensorSpec` of one trajectory (no batch dimension).
    capacity: trajectories kept.
    seed: seeds the sampling.
  """

  def __init__(self, specs: Mapping[str, object], capacity: int,
               seed: int = 0):
    if capacity < 1:
      raise ValueError(f"capacity must be at least 1, got {capacity}.")
    self.capacity = capacity
    # np.empty commits memory as it is written, so a large buffer costs
    # only what it holds.
    self._data = {name: np.empty([capacity, *spec.shape],
                                 spec.dtype.as_numpy_dtype)
                  for name, spec in specs.items()}
    self._next = 0   # Where the next trajectory goes.
    self.size = 0
    self._rng = np.random.default_rng(seed)

  def add(self, batch: Mapping[str, np.ndarray]) -> None:
    """Adds `[n, ...]` trajectories, evicting the oldest when full."""
    n = len(next(iter(batch.values())))
    slots = (self._next + np.arange(n)) % self.capacity
    for name, array in self._data.items():
      array[slots] = batch[name]
    self._next = (self._next + n) % self.capacity
    self.size = min(self.size + n, self.capacity)

  def sample(self, n: int) -> dict[str, np.ndarray]:
    """`n` trajectories drawn uniformly (with replacement)."""
    if self.size == 0:
      raise ValueError("Cannot sample from an empty replay buffer.")
    picks = self._rng.integers(0, self.size, n)
    return {name: array[picks] for name, array in self._data.items()}
