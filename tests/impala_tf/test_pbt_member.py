"""A population member's ready step with real learners and synthetic
fitness: exploit exactly above the threshold, explore, lineage, and the
hyperparameters the next update reads."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from impala_tf import experiment
from impala_tf import learner as learner_lib
from impala_tf import presets
from impala_tf.learner_loop import checkpointing
from impala_tf.pbt import member as member_lib
from impala_tf.pbt import rules
from impala_tf.pbt import store


class _Loop:
  """What the part reads of a running `LearnerLoop`."""

  def __init__(self, exp, learner):
    self.experiment = exp
    self.learner = learner
    self.lines = []
    self.parts = []

  @property
  def num_frames(self):
    return int(self.learner.num_frames.numpy())

  @property
  def num_updates(self):
    return int(self.learner.num_updates.numpy())

  def log(self, line):
    self.lines.append(line)

  def part(self, kind):
    del kind
    return None


def _member(tmp_path, index, threshold, learner=None):
  config = presets.CATCH.replace(batch_size=4, unroll_length=5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  learner = learner or learner_lib.Learner(exp.config, exp.make_network,
                                           exp.observation_spec)
  loop = _Loop(exp, learner)
  part = member_lib.PopulationMember(
      str(tmp_path), index, str(tmp_path / f"member-{index}"),
      rules.Rules(burn_in_frames=0, ready_episodes=1,
                  exploit_threshold=threshold), initial="config")
  part.start(loop)
  return part, loop


def _set_returns(part, values):
  part._returns = {0: list(values)}  # pylint: disable=protected-access
  part._new_episodes = len(values)  # pylint: disable=protected-access


@pytest.mark.parametrize("gap,copies", [(0.49, False), (0.51, True)])
def test_a_member_copies_only_a_member_better_by_more_than_the_threshold(
    tmp_path, gap, copies):
  source, source_loop = _member(tmp_path, 0, threshold=0.5)
  for v in source_loop.learner.variables:
    v.assign(tf.fill(v.shape, 0.25))
  source_loop.learner.hyperparameters.assign({"learning_rate": 3e-3,
                                              "entropy_cost": 2e-3})
  _set_returns(source, [0.5 + gap] * 3)
  source.ready(source_loop)  # Alone: explores only, writes its copy.
  source_state = store.read_member_state(str(tmp_path), 0)
  assert source_state["fitness"] == pytest.approx(0.5 + gap)

  part, loop = _member(tmp_path, 1, threshold=0.5)
  own = [v.numpy().copy() for v in loop.learner.variables]
  _set_returns(part, [0.0, 1.0])  # Fitness 0.5.
  event = part.ready(loop)

  assert event["opponent"] == 0 and event["copied"] is copies
  assert event["fitness"] == 0.5
  assert event["opponent_fitness"] == pytest.approx(0.5 + gap)
  after = loop.learner.hyperparameters.values()
  start = (source_state["hyperparameters"] if copies else
           event["hyperparameters_before"])
  for name, value in event["hyperparameters_after"].items():
    ratio = value / start[name]
    assert min(abs(ratio - r) for r in (1.2, 1.0, 1 / 1.2)) < 1e-5, name
    assert after[name] == pytest.approx(value, rel=1e-6)
  for mine, before in zip(loop.learner.variables, own):
    if copies:
      np.testing.assert_array_equal(mine.numpy(), 0.25)
    else:
      np.testing.assert_array_equal(mine.numpy(), before)
  # The event is on disk, and the member's state says where its copy is.
  path = tmp_path / "pbt" / "lineage" / "member-1-000000000000000.json"
  assert json.loads(path.read_text())["copied"] is copies
  state = store.read_member_state(str(tmp_path), 1)
  assert state["hyperparameters"] == pytest.approx(after)
  assert tf.io.gfile.exists(state["checkpoint"] + ".index")
  assert any(("copied member 0" if copies else "kept its weights") in line
             for line in loop.lines)


def test_the_next_update_reads_the_new_hyperparameters(tmp_path):
  part, loop = _member(tmp_path, 0, threshold=5.0)
  learner = loop.learner
  learner.hyperparameters.assign({"learning_rate": 2e-3,
                                  "entropy_cost": 0.03,
                                  "rmsprop_epsilon": 0.5,
                                  "max_grad_norm": 7.0})
  spec = loop.experiment.trajectory_specs()
  rng = np.random.default_rng(0)
  batch = {}
  for name, s in spec.items():
    shape = [4] + s.shape.as_list()
    if s.dtype.is_floating:
      batch[name] = tf.constant(rng.normal(size=shape), s.dtype)
    elif s.dtype == tf.bool:
      batch[name] = tf.zeros(shape, tf.bool)
    else:
      batch[name] = tf.zeros(shape, s.dtype)
  from impala_tf import trajectory  # pylint: disable=g-import-not-at-top
  batch = trajectory.restore_frames(batch)
  batch["episode_return"] = tf.fill(batch["reward"].shape, np.nan)
  twin = learner_lib.Learner(loop.experiment.config,
                             loop.experiment.make_network,
                             loop.experiment.observation_spec)
  for a, b in zip(twin.variables, learner.variables):
    a.assign(b)
  twin.hyperparameters.assign(dict(learner.hyperparameters.values(),
                                   learning_rate=1e-3))
  start = [v.numpy().copy() for v in learner.variables]
  logs = learner.update(batch)
  twin.update(batch)
  assert float(logs["entropy_cost"]) == pytest.approx(0.03)
  assert float(logs["rmsprop_epsilon"]) == pytest.approx(0.5)
  assert float(logs["max_grad_norm"]) == pytest.approx(7.0)
  assert float(logs["learning_rate"]) == pytest.approx(2e-3)
  # RMSProp without momentum steps in proportion to the rate: the step at
  # 2e-3 is twice the step at 1e-3, so the compiled update read the
  # variable, not the config's 1e-2.
  for mine, theirs, before in zip(learner.variables, twin.variables, start):
    np.testing.assert_allclose(mine.numpy() - before,
                               2 * (theirs.numpy() - before),
                               rtol=1e-3, atol=1e-7)
  del part


def test_a_resumed_member_keeps_its_hyperparameters_and_a_plain_run_its_flags(
    tmp_path):
  config = presets.CATCH.replace(batch_size=4, unroll_length=5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec)
  learner.hyperparameters.assign({"learning_rate": 1.5e-3})
  learner.num_updates.assign(3)
  directory = str(tmp_path / "checkpoints")
  tf.train.CheckpointManager(tf.train.Checkpoint(
      network=learner.network, optimizer=learner.optimizer,
      num_updates=learner.num_updates, num_frames=learner.num_frames,
      hyperparameters=learner.hyperparameters), directory, 1).save()
  for keep, expected in ((True, 1.5e-3), (False, config.learning_rate)):
    fresh = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec)
    part = checkpointing.Checkpointer(directory, keep_hyperparameters=keep)
    loop = _Loop(exp, fresh)
    loop.start_time = 0.0
    part.start(loop)
    assert fresh.hyperparameters.values()["learning_rate"] == pytest.approx(
        expected)
  assert os.path.isdir(directory)
