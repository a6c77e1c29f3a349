"""Starting TensorFlow without its C++ start-up lines on the first screen.

TensorFlow prints lines to stderr while it loads (CUDA probing on a machine
without a GPU: "Could not find cuda drivers ...", preceded by absl's "All log
messages before absl::InitializeLog() ..."), before `TF_CPP_MIN_LOG_LEVEL`
applies to them. `import_tensorflow` loads TF with stderr sent to a
temporary file, unless the user asked to see TF's logs (a level below 3),
and shows what was captured only if the import fails.

`import_tensorflow(without_keras=True)`, for the learner and actor
processes: TF 2.21 imports Keras 3 eagerly when it loads (`keras.src.
optimizers`, to register them for SavedModel), and with it about 1,100
modules (Keras, rich, IPython, matplotlib), 60 MB of private memory in
every process. Nothing here uses Keras 3 (tensorflow-probability uses
tf_keras, which still loads), and TF goes on without it when the import
fails, so those processes make it fail.
"""

import importlib.abc
import importlib.machinery
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


class _RefuseKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Makes `import keras` (Keras 3, not tf_keras) raise ImportError."""

  def find_spec(self, name, path=None, target=None):
    del path, target
    if name == "keras" or name.startswith("keras."):
      # No origin: TF's look-up of Keras' directory finds none.
      return importlib.machinery.ModuleSpec(name, self)
    return None

  def create_module(self, spec):
    raise ImportError(
        f"{spec.name} is not loaded in impala_tf's learner and actor "
        "processes (tf_startup: it costs 60 MB each and is not used)")

  def exec_module(self, module):
    raise ImportError(f"{module.__name__} is not loaded")


def refuse_keras() -> None:
  """From now on `import keras` fails in this process (see the module
  docstring); call it before TF is imported."""
  if "keras" in sys.modules:
    return  # Too late: already loaded.
  if not any(isinstance(f, _RefuseKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RefuseKeras())


def import_tensorflow(without_keras: bool = False):
  """Imports and returns `tensorflow` (see the module docstring)."""
  if without_keras:
    refuse_keras()
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
