"""Stacked frames travel once per step and are rebuilt exactly."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import trajectory


def _one_pixel_batch(newest, history, restart):
  """A batch of one trajectory with 1x1 frames."""
  return {
      "newest_frame": tf.constant(np.asarray(newest, np.uint8)[None, :, None,
                                                                None]),
      "frame_history": tf.constant(np.asarray(history, np.uint8)[None, None,
                                                                  None, :]),
      "stack_restart": tf.constant(np.asarray(restart, bool)[None]),
      "reward": tf.zeros([1, len(newest)]),
  }


def test_restore_frames_slides_the_window_and_zeroes_after_restarts():
  newest = [10, 11, 12, 13, 14, 15, 16, 17, 18]
  restart = [False, False, True, False, False, False, True, True, False]
  batch = _one_pixel_batch(newest, [1, 2, 3], restart)
  restored = trajectory.restore_frames(batch)
  assert set(restored) == {"frame", "reward"}
  frames = restored["frame"].numpy()[0, :, 0, 0, :]
  np.testing.assert_array_equal(frames, [
      [1, 2, 3, 10],
      [2, 3, 10, 11],
      [0, 0, 0, 12],     # A new game: only its first frame.
      [0, 0, 12, 13],
      [0, 12, 13, 14],
      [12, 13, 14, 15],
      [0, 0, 0, 16],
      [0, 0, 0, 17],     # Two restarts in a row.
      [0, 0, 17, 18],
  ])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_restore_frames_in_a_function(jit_compile):
  batch = _one_pixel_batch([10, 11, 12], [1, 2, 3], [False, False, True])
  # Batch and time unknown; the stack depth must be static.
  signature = {k: tf.TensorSpec([None, None, *v.shape[2:]], v.dtype)
               for k, v in batch.items() if k != "frame_history"}
  signature["frame_history"] = tf.TensorSpec([None, 1, 1, 3], tf.uint8)
  fn = tf.function(trajectory.restore_frames, input_signature=[signature],
                   jit_compile=jit_compile)
  np.testing.assert_array_equal(fn(batch)["frame"].numpy()[0, :, 0, 0],
                                [[1, 2, 3, 10], [2, 3, 10, 11],
                                 [0, 0, 0, 12]])


def test_unstacked_batches_pass_through():
  batch = {"frame": tf.zeros([2, 3, 4, 4, 3], tf.uint8)}
  assert trajectory.restore_frames(batch)["frame"] is batch["frame"]


def test_specs_replace_a_stacked_frame():
  specs = trajectory.specs(20, 6, {"frame": ((84, 84, 4), np.uint8)},
                           use_lstm=False, frame_stack=4)
  assert "frame" not in specs
  assert specs["newest_frame"].shape == [21, 84, 84]
  assert specs["frame_history"].shape == [84, 84, 3]
  assert specs["stack_restart"].shape == [21]
  with pytest.raises(ValueError, match=r"frame_stack=4 needs a frame"):
    trajectory.specs(20, 6, {"frame": ((84, 84, 3), np.uint8)},
                     use_lstm=False, frame_stack=4)
