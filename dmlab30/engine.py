"""Finding DeepMind Lab's Python module, with a clear error when it is absent.

`deepmind_lab` is not on the package index: users build it from DeepMind's
sources with Bazel. Every entry point calls `check_engine()` first so a
missing build is reported in one message, not as a traceback from deep inside
an actor.

`bind_engine_libraries()` (called by `dmlab30.make` before every `Lab`)
works around a clash between the engine and TensorFlow in one process; see
its docstring.
"""

import ctypes
import importlib
import os
import threading
import types
from typing import Optional

from impala_tf.runtime import faults
from impala_tf import suites

ENGINE_MODULE = "deepmind_lab"
SOURCE_URL = "https://github.com/deepmind/lab"
BUILD_DOCS_URL = "https://github.com/deepmind/lab/blob/master/docs/users/build.md"
PIP_DOCS_URL = ("https://github.com/deepmind/lab/blob/master/python/"
                "pip_package/README.md")


class EngineMissingError(ImportError, suites.SuiteUnavailableError):
  """The `deepmind_lab` module cannot be imported."""


def _how_to_get_it() -> str:
  return (
      f"DeepMind Lab is not on the package index; it must be built from its "
      f"sources ({SOURCE_URL}) with Bazel, following its build instructions "
      f"in docs/users/build.md ({BUILD_DOCS_URL}). To make `import "
      f"{ENGINE_MODULE}` work in this Python environment, build its pip "
      f"package (`bazel build -c opt python/pip_package:build_pip_package`, "
      f"see python/pip_package/README.md, {PIP_DOCS_URL}) and `pip install` "
      f"the wheel. impala_tf's docs/dmlab30.md has the details.")


def check_engine() -> types.ModuleType:
  """Returns the `deepmind_lab` module.

  Raises:
    EngineMissingError: if it cannot be imported. The message names the
      module, says that DeepMind Lab must be built from its sources and where
      its build instructions are.
  """
  try:
    return importlib.import_module(ENGINE_MODULE)
  except ModuleNotFoundError as e:
    if e.name != ENGINE_MODULE:
      # deepmind_lab exists but one of its own imports is missing.
      raise EngineMissingError(
          f"The module `{ENGINE_MODULE}` was found but does not import: {e}. "
          + _how_to_get_it(), name=ENGINE_MODULE) from e
    raise EngineMissingError(
        f"DMLab-30 needs the Python module `{ENGINE_MODULE}`, which is not "
        f"importable (no module named '{ENGINE_MODULE}'). " + _how_to_get_it(),
        name=ENGINE_MODULE) from None
  except ImportError as e:
    # Typically the compiled deepmind_lab.so cannot load a shared library
    # (OSMesa, SDL) or was built against another Python/NumPy.
    raise EngineMissingError(
        f"The module `{ENGINE_MODULE}` was found but failed to load: {e}. It "
        f"must be built for this Python and NumPy. " + _how_to_get_it(),
        name=ENGINE_MODULE) from e


# The renderer library `deepmind_lab` loads for each `Lab` (its
# `dmlab_so_loader`), by `Lab(renderer=...)`.
RENDERER_LIBRARIES = {"software": "libdmlab_headless_sw.so",
                      "hardware": "libdmlab_headless_hw.so"}

# `impala_tf.runtime.faults` point that leaves the libraries as the engine loads
# them, so tests can show the crash and how a run reports it.
UNBOUND_FAULT = "dmlab_engine_unbound"

_bound: set[str] = set()
_bound_lock = threading.Lock()


def bind_engine_libraries(module: types.ModuleType,
                          renderer: str = "software",
                          runfiles_path: Optional[str] = None) -> Optional[str]:
  """Loads the engine's renderer library and everything it links with, each
  bound to its own dependencies first (`RTLD_DEEPBIND`), before any `Lab`
  of this process loads it.

  Why: TensorFlow's `libtensorflow_framework.so` exports its own copy of
  LLVM (and of zlib and zstd) to the whole process. DeepMind Lab's software
  renderer is Mesa's llvmpipe (OSMesa), which links the system's LLVM; when
  it is loaded after TensorFlow, its LLVM calls bind to TensorFlow's copy,
  another LLVM version, and the first `reset()` crashes with SIGSEGV
  (`llvm::FixedVectorType::get` inside TF's library, called from OSMesa).
  Loaded with `RTLD_DEEPBIND`, the renderer and its dependencies (OSMesa,
  the system's LLVM, libpng and zlib) use each other's symbols first, so the
  engine works whether TensorFlow was imported before or after it; the
  `Lab`s created later find these libraries loaded and bound. TensorFlow
  keeps its own LLVM (XLA compiles as before).

  Args:
    module: the `deepmind_lab` module; a module without the renderer
      library beside it (a fake, a build that places it elsewhere) is left
      alone.
    renderer: `Lab`'s renderer, "software" or "hardware".
    runfiles_path: the engine's runfiles directory, if set with
      `deepmind_lab.set_runfiles_path`; default: beside the module.

  Returns:
    The library path loaded (or loaded before), or None if there is none.
  """
  name = RENDERER_LIBRARIES.get(renderer)
  if faults.is_injected(UNBOUND_FAULT):
    return None  # Tests: the crash this prevents, as it was.
  if name is None:
    return None  # `Lab` itself rejects the renderer with its own error.
  if runfiles_path:
    directory = os.fspath(runfiles_path)
  else:
    location = getattr(module, "__file__", None)
    if not location:
      return None
    directory = os.path.dirname(location)
  path = os.path.join(directory, name)
  if not os.path.exists(path):
    return None
  with _bound_lock:
    if path not in _bound:
      ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL | os.RTLD_DEEPBIND)
      _bound.add(path)
  return path
