"""Checkpointing: the part of the learner's loop that saves and restores.

A checkpoint holds the network, the optimiser's slots, the frame and
update counters, the tunable hyperparameters (`learner.Hyperparameters`)
and the returns of the last 100 games per level (`episodes.EpisodeStats`);
the learning rate is a function of the frame counter, so the schedule
resumes with it. The saved hyperparameters are used again only when asked
(`keep_hyperparameters`: a population member's, which population-based
training changed); otherwise the run's config (its flags) wins, so a resume
with another `--learning_rate` uses it. If the newest checkpoint cannot be read (a
truncated file, a lost shard), the one before it is used, and so on; if
none can be read, the run stops with an error and deletes nothing.
"""

import os
from typing import Callable, Optional

import tensorflow as tf

from impala_tf.config import errors
from impala_tf.runtime import faults
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
      if not partial:
        status.assert_existing_objects_matched()
      # Values the file holds that `checkpoint` does not ask for (the
      # optimiser when only the network is wanted, the hyperparameters,
      # restored apart) are expected: no warning about them at exit.
      status.expect_partial()
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
               max_to_keep: int = 3, keep_hyperparameters: bool = False):
    self.directory = directory
    self.keep_hyperparameters = keep_hyperparameters
    self.interval_s = interval_s
    self.max_to_keep = max_to_keep
    self.restored: Optional[str] = None
    self._checkpoint = None
    self._manager = None
    self._last_save = 0.0
    self._saved_number = None

  def start(self, loop):
    learner = loop.learner
    state = dict(network=learner.network, optimizer=learner.optimizer,
                 num_updates=learner.num_updates,
                 num_frames=learner.num_frames)
    episode_state = loop.episodes.checkpointable()
    self._checkpoint = tf.train.Checkpoint(
        **state, hyperparameters=learner.hyperparameters,
        episodes=episode_state)
    # Restored without the hyperparameters and the episode statistics,
    # which checkpoints written before they were saved do not hold; they
    # come back on their own below.
    self.restored = restore_newest(tf.train.Checkpoint(**state),
                                   self.directory, log=loop.log)
    if self.restored and self.keep_hyperparameters:
      tf.train.Checkpoint(hyperparameters=learner.hyperparameters).restore(
          self.restored).expect_partial()
    if self.restored:
      # The same for the games' windows (older checkpoints have none).
      tf.train.Checkpoint(episodes=episode_state).restore(
          self.restored).expect_partial()
      loop.episodes.from_checkpoint()
      loop.log(f"Restored {self.restored} at {loop.num_frames:,} frames, "
               f"{loop.num_updates:,} updates.")
      self._saved_number = loop.num_updates
    # Made after the restore: the manager deletes nothing until it saves.
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, self.directory, max_to_keep=self.max_to_keep)
    self._last_save = loop.start_time

  def mark_changed(self) -> None:
    """The state changed without an update (a population member copied
    weights or changed its hyperparameters): the next save must write,
    even at an update count already saved."""
    self._saved_number = None

  def latest(self) -> Optional[str]:
    """The newest checkpoint saved or restored (None before any)."""
    return self._manager.latest_checkpoint if self._manager else None

  def save(self, loop, final: bool = False) -> Optional[str]:
    """Saves now; returns the checkpoint's path prefix, or None if nothing
    was saved.

    Never saves a non-finite weight (the newest checkpoint stays the last
    good one). A failed write (full disk, permissions, a network filesystem)
    removes its partial files and is one line; the next interval tries
    again. A failed `final` save raises `CheckpointError` with that line.
    """
    number = loop.num_updates
    if self._saved_number == number:
      return self.latest()  # Nothing new since the last save.
    if not all(bool(tf.reduce_all(tf.math.is_finite(v)))
               for v in loop.learner.variables):
      loop.log(f"Not saving a checkpoint: the weights are not finite; the "
               f"newest checkpoint stays {self.latest()}.")
      return None
    loop.episodes.to_checkpoint()
    try:
      faults.fail_if_injected("checkpoint_write")
      path = self._manager.save(checkpoint_number=number)
    except (OSError, tf.errors.OpError) as e:
      self._remove_partial(number)
      loop.counters["failed_checkpoint_saves"] = (
          loop.counters.get("failed_checkpoint_saves", 0) + 1)
      message = (f"Could not save checkpoint {number} ({_first_line(e)}); "
                 f"the newest good checkpoint is {self.latest()}.")
      if final:
        raise CheckpointError(message) from e
      loop.log(f"{message} Trying again in {self.interval_s:g} s.")
      return None
    self._saved_number = number
    return path

  def _remove_partial(self, number: int):
    """Deletes what a failed save of checkpoint `number` left behind."""
    prefix = os.path.join(self.directory, f"ckpt-{number}")
    for path in tf.io.gfile.glob(prefix + "_temp*") + tf.io.gfile.glob(
        prefix + ".*"):
      try:
        if tf.io.gfile.isdir(path):
          tf.io.gfile.rmtree(path)
        else:
          tf.io.gfile.remove(path)
      except (OSError, tf.errors.OpError):
        pass  # Best effort: the same failure may forbid the removal too.

  def tick(self, loop, now):
    if now - self._last_save >= self.interval_s:
      self.save(loop)
      self._last_save = now

  def end(self, loop):
    if isinstance(loop.error, errors.DivergenceError):
      # The weights that diverged are finite but no use; keep the last
      # checkpoint taken before.
      return
    self.save(loop, final=True)
