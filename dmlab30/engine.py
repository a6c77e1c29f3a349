"""Finding DeepMind Lab's Python module, with a clear error when it is absent.

`deepmind_lab` is not on the package index: users build it from DeepMind's
sources with Bazel. Every entry point calls `check_engine()` first so a
missing build is reported in one message, not as a traceback from deep inside
an actor.
"""

import importlib
import types

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
