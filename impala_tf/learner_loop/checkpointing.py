"""Checkpointing: the part of the learner's loop that saves and restores.

A checkpoint holds the network, the optimiser's slots and the frame and
update counters; the learning rate is a function of the frame counter, so
the schedule resumes with it. If the newest checkpoint cannot be read (a
truncated file, a lost shard), the one before it is used, and so on; if
none can be read, the run stops with an error and deletes nothing.
"""

from typing import Callable, Optional

import tensorflow as tf

from impala_tf import errors
from impala_tf.learner_loop import base


class CheckpointError(errors.RunError):
  """No checkpoint of a run directory could be read."""


def _first_line(error: Exception) -> str:
  text = getattr(error, "message", None) or str(error)
  return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def restore_newest(checkpoint: tf.train.Checkpoint, directory: str, *,
                   log: Callable[[str], None] = print,
                   partial: bool = False) -> Optional[str]:
  """Restores the newest readable checkpoint in `directory` into
  `checkpoint`; returns its path, or None if there is none.

  Args:
    partial: the checkpoint may hold objects `checkpoint` does not (e.g.
      the optimiser, when only the network is wanted).

  Raises:
    CheckpointError: checkpoints exist but none could be read.
  """
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return None
  paths = list(state.all_model_checkpoint_paths) or [
      state.model_checkpoint_path]
  failures = []
  for path in reversed(paths):
    try:
      status = checkpoint.restore(path)
      if partial:
        status.expect_partial()
      else:
        status.assert_existing_objects_matched()
    except Exception as e:  # pylint: disable=broad-except
      # A damaged file fails in many ways (DataLossError, IndexError "read
      # less bytes than requested", a missing shard's NotFoundError); each
      # is reported and the next older checkpoint tried.
      failures.append(f"{path}: {_first_line(e)}")
      log(f"Could not read checkpoint {path} ({_first_line(e)}); "
          + ("trying the one before it." if path != paths[0] else
             "it was the oldest."))
      continue
    if failures:
      log(f"Fell back to {path}, the newest checkpoint that could be read.")
    return path
  raise CheckpointError(
      f"None of the {len(paths)} checkpoints in {directory} could be read "
      f"({'; '.join(failures)}). Nothing was deleted; move the directory "
      "aside to start afresh, or restore its files.")


class Checkpointer(base.LoopPart):
  """Restores the newest readable checkpoint under `directory` at start,
  saves one every `interval_s` and at the end, keeping the newest
  `max_to_keep`."""

  def __init__(self, directory: str, interval_s: float = 600.0,
               max_to_keep: int = 3):
    self.directory = directory
    self.interval_s = interval_s
    self.max_to_keep = max_to_keep
    self.restored: Optional[str] = None
    self._checkpoint = None
    self._manager = None
    self._last_save = 0.0

  def start(self, loop):
    learner = loop.learner
    self._checkpoint = tf.train.Checkpoint(
        network=learner.network, optimizer=learner.optimizer,
        num_updates=learner.num_updates, num_frames=learner.num_frames)
    self.restored = restore_newest(self._checkpoint, self.directory,
                                   log=loop.log)
    if self.restored:
      loop.log(f"Restored {self.restored} at {loop.num_frames:,} frames, "
               f"{loop.num_updates:,} updates.")
    # Made after the restore: the manager deletes nothing until it saves.
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, self.directory, max_to_keep=self.max_to_keep)
    self._last_save = loop.start_time

  def save(self, loop) -> str:
    """Saves now; returns the checkpoint's path prefix."""
    return self._manager.save(checkpoint_number=loop.num_updates)

  def tick(self, loop, now):
    if now - self._last_save >= self.interval_s:
      self.save(loop)
      self._last_save = now

  def end(self, loop):
    self.save(loop)
