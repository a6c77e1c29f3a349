"""A level cache on disk, for DeepMind Lab's `level_cache` protocol.

Generating (compiling) a level's map dominates DMLab's CPU time. DeepMind Lab
asks the object passed as `Lab(..., level_cache=...)` before compiling a map:
`fetch(key, pk3_path) -> bool` must copy a cached map for `key` to `pk3_path`
and return True, or return False; after compiling a map it calls
`write(key, pk3_path)` so the map can be stored. Keys are file names.

Many actors (often in different processes) share one directory, so `write`
copies to a private temporary file and renames it into place: a concurrent
`fetch` sees either no file or a complete one, never a partial copy.
"""

import os
import shutil
import tempfile


class LevelCache:
  """DeepMind Lab level cache backed by the directory `cache_dir`."""

  def __init__(self, cache_dir: str | os.PathLike):
    self.cache_dir = os.fspath(cache_dir)
    os.makedirs(self.cache_dir, exist_ok=True)

  def _path(self, key: str) -> str:
    # A key is a file name; anything with a separator would escape the cache.
    if not key or os.path.basename(key) != key or key in (".", ".."):
      raise ValueError(f"Level cache key must be a plain file name, got {key!r}.")
    return os.path.join(self.cache_dir, key)

  def fetch(self, key: str, pk3_path: str) -> bool:
    """Copies the cached map `key` to `pk3_path`; False if it is not cached."""
    path = self._path(key)
    try:
      shutil.copyfile(path, pk3_path)
    except FileNotFoundError:
      if os.path.exists(path):
        raise  # The cache has it, so the destination is what is missing.
      return False
    return True

  def write(self, key: str, pk3_path: str) -> None:
    """Stores the map at `pk3_path` under `key` (no-op if already stored)."""
    path = self._path(key)
    if os.path.exists(path):
      return
    fd, tmp_path = tempfile.mkstemp(prefix=f".{key}.", dir=self.cache_dir)
    try:
      with os.fdopen(fd, "wb") as tmp, open(pk3_path, "rb") as src:
        shutil.copyfileobj(src, tmp)
      os.replace(tmp_path, path)
    except BaseException:
      os.unlink(tmp_path)
      raise
