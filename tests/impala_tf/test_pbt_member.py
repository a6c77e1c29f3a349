"""A population member's ready step with real learners and synthetic
fitness: exploit exactly above the threshold, explore, lineage, and the
hyperparameters the next update reads."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.config import experiment
from impala_tf.agent import learner as learner_lib
from impala_tf.config import presets
from impala_tf.learner_loop import checkpointing
from impala_tf.learner_loop import episodes
from impala_tf.pbt import member as member_lib
from impala_tf.pbt import rules
from impala_tf.pbt import store


class _Loop:
  """What the part reads of a running `LearnerLoop`."""

  def __init__(self, exp, learner):
    self.experiment = exp
    self.learner = learner
    self.episodes = episodes.EpisodeStats(exp.levels)
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


def _member(tmp_path, index, threshold, learner=None, anneal=False):
  config = presets.CATCH.replace(batch_size=4, unroll_length=5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  learner = learner or learner_lib.Learner(exp.config, exp.make_network,
                                           exp.observation_spec)
  loop = _Loop(exp, learner)
  part = member_lib.PopulationMember(
      str(tmp_path), index, str(tmp_path / f"member-{index}"),
      rules.Rules(burn_in_frames=0, ready_episodes=1,
                  exploit_threshold=threshold, anneal=anneal),
      initial="config")
  part.start(loop)
  return part, loop


def _random_batch(exp, seed=0):
  """4 random trajectories of `exp` (`[B, T+1, ...]`)."""
  rng = np.random.default_rng(seed)
  batch = {}
  for name, s in exp.trajectory_specs().items():
    shape = [4] + s.shape.as_list()
    if s.dtype.is_floating:
      batch[name] = tf.constant(rng.normal(size=shape), s.dtype)
    else:
      batch[name] = tf.zeros(shape, s.dtype)
  from impala_tf.agent import trajectory  # pylint: disable=g-import-not-at-top
  return trajectory.restore_frames(batch)


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
  # A copy takes the hyperparameters the copied weights were trained with,
  # not the ones the source moved on to when it explored.
  assert source_state["checkpoint_hyperparameters"]["learning_rate"] == (
      pytest.approx(3e-3))
  start = (source_state["checkpoint_hyperparameters"] if copies else
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
  [path] = (tmp_path / "pbt" / "lineage").glob("member-1-*.json")
  assert json.loads(path.read_text())["copied"] is copies
  state = store.read_member_state(str(tmp_path), 1)
  assert state["hyperparameters"] == pytest.approx(after)
  assert tf.io.gfile.exists(state["checkpoint"] + ".index")
  assert any(("copied member 0" if copies else "kept its weights") in line
             for line in loop.lines)


def test_the_next_update_reads_the_new_hyperparameters(tmp_path):
  part, loop = _member(tmp_path, 0, threshold=5.0)
  exp, learner = loop.experiment, loop.learner
  batch = _random_batch(exp)
  base = {"learning_rate": 2e-3, "entropy_cost": 0.03,
          "rmsprop_epsilon": 0.5, "max_grad_norm": 7.0}
  start = [v.numpy().copy() for v in learner.variables]

  def step(**changes):
    """One update from the same weights with `changes` to `base`; the
    logs and each variable's step."""
    twin = learner_lib.Learner(exp.config, exp.make_network,
                               exp.observation_spec)
    for a, b in zip(twin.variables, start):
      a.assign(b)
    twin.hyperparameters.assign(dict(base, **changes))
    logs = twin.update(batch)
    return logs, [v.numpy() - b for v, b in zip(twin.variables, start)]

  logs, steps = step()
  for name in ("entropy_cost", "rmsprop_epsilon", "max_grad_norm"):
    assert float(logs[name]) == pytest.approx(base[name])
  assert float(logs["learning_rate"]) == pytest.approx(2e-3)
  assert float(logs["grad_norm"]) > 0.1
  # RMSProp without momentum steps in proportion to the rate.
  _, half = step(learning_rate=1e-3)
  for full, smaller in zip(steps, half):
    np.testing.assert_allclose(full, 2 * smaller, rtol=1e-3, atol=1e-7)
  # The entropy cost weighs the entropy term of the loss.
  more, _ = step(entropy_cost=0.06)
  assert float(more["total_loss"]) - float(logs["total_loss"]) == (
      pytest.approx(0.03 * float(logs["entropy_loss"]), rel=1e-3))
  # ε inside the square root and the clipping norm change the step.
  for name, value in (("rmsprop_epsilon", 1e-4), ("max_grad_norm", 0.1)):
    _, other = step(**{name: value})
    assert max(float(np.abs(a - b).max()) for a, b in zip(steps, other)) > (
        1e-6), name
  del part


@pytest.mark.parametrize("anneal", [False, True])
def test_a_member_anneals_its_learning_rate_only_when_asked(tmp_path, anneal):
  # [paper Fig. F.1, our reading] By default the rate in force is the
  # tuned one at any frame count; with anneal it is Table G.1's linear
  # schedule to 0 at total_frames (128,000 for Catch).
  part, loop = _member(tmp_path, 0, threshold=5.0, anneal=anneal)
  learner = loop.learner
  batch = _random_batch(loop.experiment)
  total = loop.experiment.config.total_frames
  rates = []
  for frames in (0, total // 4, total // 2, total):
    learner.num_frames.assign(frames)
    rates.append(float(learner.update(batch)["learning_rate"]))
  tuned = learner.hyperparameters.values()["learning_rate"]
  assert tuned == pytest.approx(1e-2)  # The Catch preset's, kept.
  want = ([tuned, 0.75 * tuned, 0.5 * tuned, 0.0] if anneal
          else [tuned] * 4)
  assert rates == pytest.approx(want, rel=1e-6)
  said = ("learning rate annealed linearly to 0 at 128,000 frames" if anneal
          else "learning rate not annealed")
  assert any(said in line for line in loop.lines)
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


def test_a_copy_that_fails_half_way_leaves_the_learner_as_it_was(tmp_path):
  source, source_loop = _member(tmp_path, 0, threshold=0.0)
  for v in source_loop.learner.variables:
    v.assign(tf.fill(v.shape, 0.25))
  # A checkpoint with the network only: reading it assigns the weights,
  # then fails on the missing optimiser slots.
  partial = tf.train.Checkpoint(network=source_loop.learner.network).write(
      str(tmp_path / "network-only"))
  store.write_member_state(str(tmp_path), 0, {
      "fitness": 1.0, "checkpoint": partial,
      "checkpoint_hyperparameters": source.hyperparameters(source_loop)})
  part, loop = _member(tmp_path, 1, threshold=0.0)
  own = [v.numpy().copy() for v in loop.learner.variables]
  _set_returns(part, [0.0])
  event = part.ready(loop)
  assert event["opponent"] == 0 and not event["copied"]
  for mine, before in zip(loop.learner.variables, own):
    np.testing.assert_array_equal(mine.numpy(), before)
  assert any("could not copy member 0" in line for line in loop.lines)


def test_returns_since_the_last_ready_step_survive_a_stop(tmp_path):
  part, loop = _member(tmp_path, 0, threshold=0.0)
  _set_returns(part, [0.5, -1.0, 1.0])
  part.end(loop)  # A turn ends: the member stops and saves.

  class _Restored:
    restored = "ckpt-1"

  loop.part = lambda kind: _Restored() if kind is checkpointing.Checkpointer \
      else None
  again = member_lib.PopulationMember(
      str(tmp_path), 0, str(tmp_path / "member-0"),
      rules.Rules(burn_in_frames=0, ready_episodes=5))
  again.start(loop)
  assert again._new_episodes == 3  # pylint: disable=protected-access
  assert again.fitness(loop) == pytest.approx(0.5 / 3)
  # Resumed: the hyperparameters stay; nothing is drawn again.
  assert any("resumed with" in line for line in loop.lines)
