"""Test-session set-up shared by every test module."""

import os

# Quiet TF's C++ start-up chatter in test output, and in the processes the
# tests start (the launcher hides it by default too).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The start-up lines TF's C++ logging writes before it reads that level
# (e.g. oneDNN's notice) are hidden too: pytest-xdist's controller imports
# this file before pytest captures output.
from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top

tf = tf_startup.import_tensorflow()

# Multi-replica code is exercised on CPU: split the one physical CPU into two
# logical devices before TF initialises its devices (it can only be done once,
# before any op runs). Single-device code keeps using CPU:0 as before.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


import subprocess  # pylint: disable=g-import-not-at-top,wrong-import-position
import sys  # pylint: disable=g-import-not-at-top,wrong-import-position

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture
def cpu_hogs():
  """Starts, when called, a process keeping each core busy until the test
  ends (fault tests must not depend on a quiet machine)."""
  hogs = []

  def start():
    hogs.extend(subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(os.cpu_count() or 1))

  yield start
  for hog in hogs:
    hog.kill()
    hog.wait()


@pytest.fixture
def cpu_hog(cpu_hogs):  # pylint: disable=redefined-outer-name
  """Keeps every core busy while a test runs."""
  cpu_hogs()


@pytest.fixture(autouse=True, scope="session")
def user_cache_directory(tmp_path_factory):
  """The user's cache directory (`$XDG_CACHE_HOME`, where e.g. which
  DMLab levels this engine loads is kept) under pytest's temporary
  directory for the whole session, in the processes the tests start too."""
  path = tmp_path_factory.mktemp("user_cache")
  previous = os.environ.get("XDG_CACHE_HOME")
  os.environ["XDG_CACHE_HOME"] = str(path)
  yield path
  if previous is None:
    del os.environ["XDG_CACHE_HOME"]
  else:
    os.environ["XDG_CACHE_HOME"] = previous


# Session fixtures whose work is a whole training run: every test that uses
# one goes to the same pytest-xdist worker, so the run is made once, not
# once per worker.
_SHARED_RUNS = ("trained_catch_run",)


# Before pytest-xdist's own hook, which reads the group into each test's id.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
  # The slow tests first (otherwise in the order collected): the workers
  # take tests from the front, so the suite ends on short tests instead of
  # one worker finishing a long one while the other waits.
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
  for item in items:
    for name in _SHARED_RUNS:
      if name in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.xdist_group(name))
