"""A clear failure when deepmind_lab is not importable."""

import importlib.util
import subprocess
import sys

import pytest

import dmlab30


def _assert_explains_how_to_get_deepmind_lab(message):
  assert "deepmind_lab" in message
  assert "built from its sources" in message
  assert "docs/users/build.md" in message
  assert "https://github.com/deepmind/lab" in message


def test_check_engine_raises_engine_missing_error(no_engine):
  with pytest.raises(dmlab30.EngineMissingError) as info:
    dmlab30.check_engine()
  assert isinstance(info.value, ImportError)
  assert info.value.name == "deepmind_lab"
  _assert_explains_how_to_get_deepmind_lab(str(info.value))


def test_make_checks_the_engine_first(no_engine):
  with pytest.raises(dmlab30.EngineMissingError) as info:
    dmlab30.make("rooms_watermaze")
  _assert_explains_how_to_get_deepmind_lab(str(info.value))


def test_broken_build_is_reported_as_such(monkeypatch):
  # Stands in for a deepmind_lab.so that cannot load its shared libraries.
  def failing_import(name, *args, **kwargs):
    raise ImportError("libOSMesa.so.8: cannot open shared object file",
                      name="deepmind_lab")
  monkeypatch.setattr(dmlab30.engine.importlib, "import_module",
                      failing_import)
  with pytest.raises(dmlab30.EngineMissingError,
                     match="found but failed to load: libOSMesa") as info:
    dmlab30.check_engine()
  _assert_explains_how_to_get_deepmind_lab(str(info.value))


def test_check_engine_returns_the_module_when_present(fake_lab):
  assert dmlab30.check_engine() is fake_lab


@pytest.mark.skipif(importlib.util.find_spec("deepmind_lab") is not None,
                    reason="deepmind_lab is installed on this machine")
def test_launch_without_engine_prints_the_message_and_exits(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", "--suite=dmlab30"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  _assert_explains_how_to_get_deepmind_lab(result.stderr)
  assert "Traceback" not in result.stderr
  assert "Traceback" not in result.stdout
