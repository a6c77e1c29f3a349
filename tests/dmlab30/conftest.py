"""Fixtures for the DMLab-30 tests: the fake deepmind_lab module."""

import sys
import tempfile

import pytest

from impala_tf.testing import fake_deepmind_lab


@pytest.fixture
def fake_lab(monkeypatch, tmp_path):
  """Installs the fake as `deepmind_lab` and returns it.

  The fake compiles its maps into a temporary directory; pointing `tempfile`
  at `tmp_path` keeps every file the tests write under pytest's directory.
  """
  scratch = tmp_path / "engine_scratch"
  scratch.mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(scratch))
  monkeypatch.setitem(sys.modules, "deepmind_lab", fake_deepmind_lab)
  monkeypatch.setattr(fake_deepmind_lab, "fake_created", [])
  return fake_deepmind_lab


@pytest.fixture
def no_engine(monkeypatch):
  """Makes `import deepmind_lab` fail as on a machine without DeepMind Lab."""
  # A None entry in sys.modules makes the import raise ModuleNotFoundError
  # for exactly this name, whatever is installed.
  monkeypatch.setitem(sys.modules, "deepmind_lab", None)


@pytest.fixture
def real_lab(monkeypatch, tmp_path):
  """The real `deepmind_lab` module, with the engine's scratch files (its
  `dmlab_temp_folder_*`, compiled maps) under `tmp_path`. Tests that use it
  are marked with `pytest.mark.skipif` on `real_engine.reason()`."""
  import importlib  # pylint: disable=g-import-not-at-top
  scratch = tmp_path / "engine_tmp"
  scratch.mkdir()
  monkeypatch.setenv("TMPDIR", str(scratch))
  monkeypatch.setattr(tempfile, "tempdir", str(scratch))
  module = importlib.import_module("deepmind_lab")
  assert module is not fake_deepmind_lab
  return module
