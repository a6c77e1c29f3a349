"""Checkpointing: the part of the learner's loop that saves and restores.

A checkpoint holds the network, the optimiser's slots and the frame and
update counters (the learning-rate schedule is a function of the frame
counter, so it resumes with them).
"""

import tensorflow as tf

from impala_tf.learner_loop import base


class Checkpointer(base.LoopPart):
  """Restores the newest checkpoint under `directory` at start, saves one
  every `interval_s` and at the end, keeping the newest `max_to_keep`."""

  def __init__(self, directory: str, interval_s: float = 600.0,
               max_to_keep: int = 3):
    self.directory = directory
    self.interval_s = interval_s
    self.max_to_keep = max_to_keep
    self._checkpoint = None
    self._manager = None
    self._last_save = 0.0

  def start(self, loop):
    learner = loop.learner
    self._checkpoint = tf.train.Checkpoint(
        network=learner.network, optimizer=learner.optimizer,
        num_updates=learner.num_updates, num_frames=learner.num_frames)
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, self.directory, max_to_keep=self.max_to_keep)
    latest = self._manager.latest_checkpoint
    if latest:
      self._checkpoint.restore(latest).assert_existing_objects_matched()
      loop.log(f"Restored {latest} at {loop.num_frames:,} frames.")
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
