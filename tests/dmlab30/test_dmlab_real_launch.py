"""`python -m impala_tf.launch --suite=dmlab30` on DeepMind Lab's real
engine, where it is installed: every run mode trains, an actor the engine
crashes is named with its place, and levels the build cannot load are found
before anything starts."""

import os
import re
import signal

import pytest

from dmlab30 import availability
from dmlab30 import levels as levels_lib
from impala_tf.testing import real_engine
from impala_tf.testing.launches import Launch

pytestmark = pytest.mark.skipif(real_engine.reason() is not None,
                                reason=str(real_engine.reason()))

# The quick start's DMLab command (`--suite=dmlab30 --levels=
# rooms_collect_good_objects`: the single-task preset with its LSTM and
# instruction encoder), made small for the test: the shallow torso, one
# environment, a few hundred frames an update, and enough frames that the
# environment plays its first 900-step episode (3,600 frames).
SMALL_RUN = ("--suite=dmlab30", "--levels=rooms_collect_good_objects",
             "--num_actors=1", "--envs_per_actor=1", "--torso=shallow",
             "--unroll_length=20", "--batch_size=4", "--total_frames=4800")


def _engine_env(tmp_path, **extra):
  """The launcher's environment: the engine's scratch files under
  `tmp_path`."""
  scratch = tmp_path / "engine_tmp"
  scratch.mkdir(exist_ok=True)
  return dict(os.environ, TMPDIR=str(scratch), **extra)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [
    ("--run_mode=processes", "--fork_children=true"),
    ("--run_mode=processes", "--fork_children=false"),
    ("--run_mode=threads",)], ids=["forked", "fresh", "threads"])
def test_a_small_dmlab_run_trains_on_the_real_engine(tmp_path, mode):
  launch = Launch(tmp_path, *SMALL_RUN, *mode, env=_engine_env(tmp_path))
  code = launch.finish(timeout_s=420)
  assert code == 0, launch.output
  assert re.search(r"^frames [\d,]+ \| [\d,]+ f/s", launch.output,
                   re.MULTILINE), launch.output
  done = re.search(r"^Done: ([\d,]+) frames, \d+ updates in .*; mean return "
                   r"over the last 100 episodes: rooms_collect_good_objects "
                   r"(-?[\d.]+) \((\d+) episodes\)$", launch.lines[-1])
  assert done, launch.output
  assert int(done.group(1).replace(",", "")) >= 4800
  assert int(done.group(3)) >= 1  # The environment finished an episode.
  assert launch.result()["status"] == "completed"


@pytest.mark.slow
def test_actors_the_engine_crashes_are_named_with_the_place(tmp_path):
  # Without the engine's libraries bound to each other, TensorFlow's LLVM
  # crashes the first reset (tests/dmlab30/test_dmlab_real_engine.py).
  env = _engine_env(tmp_path, IMPALA_TF_FAULTS="dmlab_engine_unbound")
  launch = Launch(tmp_path, *SMALL_RUN, "--num_actors=2", env=env)
  code = launch.finish(timeout_s=300)
  assert code == 1, launch.output
  assert re.fullmatch(
      r"impala_tf\.launch: error: actors failed 5 times in 5 min with the "
      r"same error, so the run stopped: actor [01] killed by SIGSEGV in "
      r"dmlab30/env\.py reset \(line \d+\)", launch.lines[-1]), launch.output
  assert re.search(r"^supervisor: actor [01] \(pid \d+\) killed by SIGSEGV "
                   r"in dmlab30/env\.py reset \(line \d+\); restarting in",
                   launch.output, re.MULTILINE), launch.output
  assert launch.result()["status"] == "failed"


def test_a_level_the_engine_cannot_load_is_one_line_before_anything_starts(
    tmp_path):
  launch = Launch(tmp_path, "--suite=dmlab30",
                  "--levels=rooms_watermaze,psychlab_continuous_recognition",
                  env=_engine_env(tmp_path))
  assert launch.finish(timeout_s=180) == 2, launch.output
  (line,) = launch.lines
  assert line.startswith(
      "impala_tf.launch: error: 1 of the 2 dmlab30 level(s) cannot run on "
      "this machine (psychlab_continuous_recognition: it shows images of the "
      "Brady et al. (2008) object set"), line
  assert line.endswith("Leave them out of --levels, or pass "
                       "--skip_unavailable_levels to train on the other 1."), line


@pytest.mark.slow
def test_all_levels_are_refused_or_started_with_the_users_consent(tmp_path):
  unavailable = availability.unavailable_levels(levels_lib.LEVELS)
  # On every build: DeepMind Lab does not ship the psychlab image set.
  assert set(levels_lib.PSYCHLAB_DATASET_LEVELS) <= set(unavailable)
  playable = [level for level in levels_lib.LEVELS if level not in unavailable]

  refused = Launch(tmp_path, "--suite=dmlab30", env=_engine_env(tmp_path))
  assert refused.finish(timeout_s=300) == 2, refused.output
  (line,) = refused.lines
  assert line.startswith(f"impala_tf.launch: error: {len(unavailable)} of the "
                         "30 dmlab30 level(s) cannot run on this machine ("), line
  for level, why in unavailable.items():
    assert f"{level}: {why}" in line

  started = Launch(tmp_path, "--suite=dmlab30", "--skip_unavailable_levels",
                   "--num_actors=2", "--torso=shallow",
                   env=_engine_env(tmp_path))
  try:
    started.wait_for(rf"^Training on {len(playable)} of the 30 levels "
                     r"\(--skip_unavailable_levels\): ", timeout_s=300)
    # Every level the build can play gets an environment of its own.
    per_actor = -(-len(playable) // 2)
    stepped = set()
    for task in (0, 1):
      match = started.wait_for(
          rf"^Actor {task}: connected to \S+; stepping {per_actor} "
          r"environments \(([^)]*)\)", timeout_s=300)
      stepped |= set(match.group(1).split(", "))
    assert stepped == set(playable)
    # Started: stopped here (generating 26 maps takes minutes on 2 cores).
    started.proc.send_signal(signal.SIGTERM)
    assert started.finish(timeout_s=180) == 128 + signal.SIGTERM
  finally:
    started.kill_everything()
