"""Starting TensorFlow without its C++ start-up lines on the first screen.

TensorFlow prints lines to stderr while it loads (CUDA probing on a machine
without a GPU: "Could not find cuda drivers ...", preceded by absl's "All log
messages before absl::InitializeLog() ..."), before `TF_CPP_MIN_LOG_LEVEL`
applies to them. `import_tensorflow` loads TF with stderr sent to a
temporary file, unless the user asked to see TF's logs (a level below 3),
and shows what was captured only if the import fails.
"""

import os
import sys
import tempfile

LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = 3


def set_log_level(level=None) -> int:
  """Sets TF's C++ log level for this process and its children (before TF
  is imported): `level` if given, else the user's `TF_CPP_MIN_LOG_LEVEL`,
  else 3 (nothing). Returns it."""
  if level is not None:
    os.environ[LOG_LEVEL_ENV] = str(level)
  else:
    os.environ.setdefault(LOG_LEVEL_ENV, str(QUIET_LEVEL))
  return int(os.environ[LOG_LEVEL_ENV])


def import_tensorflow():
  """Imports and returns `tensorflow` (see the module docstring)."""
  if "tensorflow" in sys.modules or int(
      os.environ.get(LOG_LEVEL_ENV, "0")) < QUIET_LEVEL:
    import tensorflow  # pylint: disable=g-import-not-at-top
    return tensorflow
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as capture:
    os.dup2(capture.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top
    except BaseException:
      os.dup2(saved, 2)
      capture.seek(0)
      sys.stderr.write(capture.read().decode(errors="replace"))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
  return tensorflow
