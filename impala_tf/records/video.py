"""Episodes as MP4 files, for `python -m impala_tf.evaluate --video=N`.

The encoder is imageio with its ffmpeg plugin (imageio-ffmpeg ships an
ffmpeg binary), the `video` extra: `pip install 'impala_tf[video]'`.
Without it, asking for a video is one clear error naming the extra.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

EXTRA = "video"
# [ours] Playback speed: Atari's and DMLab's 60 Hz over their 4 frames a
# step is 15 steps a second; Gymnasium's classic tasks look right at it too.
FPS = 15


class VideoUnavailableError(RuntimeError):
  """The video encoder is not installed."""


def check_encoder() -> None:
  """Raises `VideoUnavailableError` (one line, naming the extra) when
  imageio or its ffmpeg plugin cannot be imported."""
  try:
    import imageio  # pylint: disable=g-import-not-at-top,unused-import
    import imageio_ffmpeg  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise VideoUnavailableError(
        f"--video needs the video encoder, which is not installed ({e}): "
        f"pip install 'impala_tf[{EXTRA}]' (imageio and imageio-ffmpeg)."
    ) from None


def file_name(level: str, episode: int, episode_return: float) -> str:
  """"<level>-episode<k>-return<R>.mp4", safe as a file name."""
  safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", level)
  return f"{safe}-episode{episode}-return{episode_return:g}.mp4"


def write_mp4(path: str, frames: Sequence[np.ndarray], fps: int = FPS) -> str:
  """Writes `frames` (uint8 `[H, W, 3]` or `[H, W]`, one per agent step)
  as an H.264 MP4 at `path`; returns the path. Odd sizes are padded by a
  pixel (the codec's 4:2:0 needs even ones)."""
  check_encoder()
  import imageio  # pylint: disable=g-import-not-at-top
  if not frames:
    raise ValueError(f"No frames to write to {path}.")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  writer = imageio.get_writer(path, fps=fps, codec="libx264",
                              macro_block_size=1, quality=8,
                              ffmpeg_log_level="error")
  try:
    for frame in frames:
      frame = np.asarray(frame, np.uint8)
      if frame.ndim == 2 or frame.shape[-1] == 1:
        frame = np.repeat(frame.reshape(frame.shape[:2])[..., None], 3, -1)
      height, width = frame.shape[:2]
      frame = np.pad(frame, [(0, height % 2), (0, width % 2), (0, 0)])
      writer.append_data(frame)
  finally:
    writer.close()
  return path


def count_frames(path: str) -> int:
  """The number of frames in a video file (for checks)."""
  check_encoder()
  import imageio  # pylint: disable=g-import-not-at-top
  reader = imageio.get_reader(path)
  try:
    return sum(1 for _ in reader)
  finally:
    reader.close()
