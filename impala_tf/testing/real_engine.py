"""Whether DeepMind Lab's real engine is at hand, for the tests that need it.

Tests that need the real engine run wherever `deepmind_lab` imports and
are skipped elsewhere with the reason (`pytest.mark.skipif(reason() is not
None, reason=reason())`); the fake (`fake_deepmind_lab`) stands in for it
everywhere else, and `tests/dmlab30/test_dmlab_real_engine.py` holds the
fake to it.
"""

import importlib.util
from typing import Optional

_INSTALL = "docs/dmlab30.md says how to build and install it"


def reason() -> Optional[str]:
  """None when the real `deepmind_lab` imports here, else why not."""
  if importlib.util.find_spec("deepmind_lab") is None:
    return f"DeepMind Lab's engine (deepmind_lab) is not installed: {_INSTALL}"
  from dmlab30 import engine  # pylint: disable=g-import-not-at-top
  try:
    engine.check_engine()
  except engine.EngineMissingError as e:
    return f"deepmind_lab is installed but does not load ({e.args[0][:200]})"
  return None
