"""Acting and learning in one compiled program (impala_tf/anakin)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

from impala_tf import anakin
from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf.agent import trajectory
from impala_tf.config import experiment
from impala_tf.config import plan as plan_lib
from impala_tf.tfenvs import catch


def _anakin(devices, seed=0, xla=False):
  exp = experiment.build("catch")
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec,
                                strategy=learner_lib.make_strategy(devices),
                                xla_gradients=xla)
  return anakin.Anakin(catch.Catch(), learner,
                       envs_per_replica=exp.config.batch_size // len(devices),
                       seed=seed, xla=xla)


def _mean_return(episode_return):
  """The mean return of the games that ended in `[..., T+1]` returns."""
  ended = np.asarray(episode_return)[..., 1:]
  return float(np.nanmean(ended))


@pytest.mark.slow
@pytest.mark.parametrize("devices", [["/cpu:0"], ["/cpu:0", "/cpu:1"]],
                         ids=["one_device", "two_devices"])
def test_anakin_learns_catch(devices):
  trainer = _anakin(devices, xla=True)
  carry = trainer.initial_carry()
  returns = []
  for _ in range(50):  # The preset's 128,000 frames: 200 updates.
    logs, episode_return, carry = trainer.train(carry, 4)
    assert logs["total_loss"].shape == [4]
    assert episode_return.shape == [4, 32, 21]
    returns.append(_mean_return(episode_return))
  assert int(trainer.learner.num_frames) == 128_000
  assert int(trainer.learner.num_updates) == 200
  # A random policy scores about -0.6; solved is +1.
  assert np.mean(returns[-10:]) >= 0.9, returns


def test_an_anakin_unroll_is_an_actors_trajectory():
  trainer = _anakin(["/cpu:0"])
  carry = trainer.initial_carry()
  batch, carry = trainer._unroll(carry)  # pylint: disable=protected-access
  specs = trajectory.specs(trainer.config.unroll_length, catch.Catch.num_actions,
                           catch.Catch.observation_spec, use_lstm=False)
  assert set(batch) == set(specs)
  for name, spec in specs.items():
    assert batch[name].dtype == spec.dtype, name
    assert batch[name].shape[1:] == spec.shape, name
  done = batch["done"].numpy()
  returns = batch["episode_return"].numpy()
  # Every game lasts 9 steps; the first step of the first unroll starts one.
  assert done[:, 0].all() and done[:, 9].all() and done[:, 18].all()
  assert done.sum() == 3 * done.shape[0]
  ended = np.isfinite(returns)
  assert (ended == (done & (np.arange(done.shape[1]) > 0))).all()
  assert set(np.unique(returns[ended])) <= {-1.0, 1.0}
  assert (batch["episode_length"].numpy()[ended] == 9).all()
  # The next unroll starts where this one ended.
  next_batch, _ = trainer._unroll(carry)  # pylint: disable=protected-access
  np.testing.assert_array_equal(next_batch["frame"][:, 0], batch["frame"][:, -1])
  np.testing.assert_array_equal(next_batch["prev_action"][:, 0],
                                batch["prev_action"][:, -1])


def test_the_xla_unroll_and_update_are_the_graph_ones():
  graph, xla = _anakin(["/cpu:0"]), _anakin(["/cpu:0"], xla=True)
  for mine, theirs in zip(xla.learner.variables, graph.learner.variables):
    mine.assign(theirs.numpy())
  carry = graph.initial_carry()
  expected, _ = graph._unroll(carry)  # pylint: disable=protected-access
  got, _ = xla._compiled_unroll(carry)  # pylint: disable=protected-access
  for name in expected:
    if name == "behaviour_logits":
      np.testing.assert_allclose(got[name], expected[name], rtol=1e-5,
                                 atol=1e-5)
    else:
      np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
  # The learner's XLA-compiled loss gradient makes the same update.
  graph_logs, xla_logs = graph.learner.update(expected), xla.learner.update(
      expected)
  np.testing.assert_allclose(xla_logs["total_loss"], graph_logs["total_loss"],
                             rtol=1e-4)
  for mine, theirs in zip(xla.learner.variables, graph.learner.variables):
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4,
                               atol=1e-6, err_msg=mine.name)


def test_one_replica_loops_over_any_count_of_updates_with_one_trace():
  """One replica's updates are a `tf.while_loop`: one trace serves every
  count (a run's one-update calls near its budget included), and its
  updates are the ones the unrolled program makes of the same games."""
  looped, unrolled = _anakin(["/cpu:0"]), _anakin(["/cpu:0"])
  for mine, theirs in zip(looped.learner.variables,
                          unrolled.learner.variables):
    mine.assign(theirs.numpy())
  carry = looped.initial_carry()
  got_logs, got_returns, carry_after = looped.train(carry, 3)
  logs, returns, _ = unrolled._train(carry, 3)  # pylint: disable=protected-access
  assert got_logs["total_loss"].shape == [3]
  np.testing.assert_array_equal(got_returns, returns)  # The same games.
  np.testing.assert_allclose(got_logs["total_loss"], logs["total_loss"],
                             rtol=1e-4)
  for mine, theirs in zip(looped.learner.variables,
                          unrolled.learner.variables):
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4,
                               atol=1e-6, err_msg=mine.name)
  logs, returns, _ = looped.train(carry_after, 1)
  assert logs["total_loss"].shape == [1] and returns.shape == [1, 32, 21]
  assert int(looped.learner.num_frames) == 4 * 640
  assert int(looped.learner.num_updates) == 4
  assert looped._train_loop.experimental_get_tracing_count() == 1  # pylint: disable=protected-access


def test_two_replicas_make_the_update_one_device_makes_of_their_batch():
  """Each replica steps its own environments; their all-reduced update is
  the one a single device makes of the two halves together."""
  two = _anakin(["/cpu:0", "/cpu:1"])
  exp = experiment.build("catch")
  one = learner_lib.Learner(exp.config, exp.make_network, exp.observation_spec,
                            strategy=learner_lib.make_strategy(["/cpu:0"]))
  before = [v.numpy() for v in one.network.trainable_variables]
  for mine, theirs in zip(one.variables, two.learner.variables):
    mine.assign(theirs.numpy())
  carry = two.initial_carry()
  strategy = two.learner.strategy
  halves = strategy.experimental_local_results(tf.function(
      lambda c: strategy.run(two._unroll, args=(c,)))(carry))  # pylint: disable=protected-access
  batch = {name: tf.concat([half[0][name] for half in halves], axis=0)
           for name in halves[0][0]}
  logs, episode_return, _ = two.train(carry, 1)
  np.testing.assert_array_equal(
      episode_return[0], batch["episode_return"])  # The same games.
  one_logs = one.update(batch)
  assert bool(logs["finite"][0]) and bool(one_logs["finite"])
  np.testing.assert_allclose(float(logs["total_loss"][0]),
                             float(one_logs["total_loss"]), rtol=1e-4)
  assert int(one.num_frames) == int(two.learner.num_frames) == 640
  for mine, theirs in zip(one.network.trainable_variables,
                          two.learner.network.trainable_variables):
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4,
                               atol=1e-6, err_msg=mine.name)
  moved = [not np.allclose(b, v.numpy()) for b, v in
           zip(before, one.network.trainable_variables)]
  assert any(moved)


def _launch(tmp_path, *flags):
  # The timeout guards a hang only: a 64,000-frame run takes 20 to 35 s on
  # 2 cores, but in the suite beside DMLab's all-levels test and a Pong
  # run of ours its first call took minutes (XLA's threads and many
  # others on 2 cores).
  return subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", "--suite=catch",
       "--run_mode=anakin", f"--logdir={tmp_path / 'run'}", *flags],
      cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
def test_an_anakin_run_keeps_its_run_directory_resumes_and_exports(tmp_path):
  from impala_tf.records import curves  # pylint: disable=g-import-not-at-top
  from impala_tf.records import evaluation  # pylint: disable=g-import-not-at-top
  first = _launch(tmp_path, "--total_frames=64000", "--log_interval_s=1")
  assert first.returncode == 0, first.stdout + first.stderr
  lines = first.stdout.splitlines()
  assert lines[1].startswith("Anakin: catch written in TensorFlow, 32 "
                             "environments over 1 replica(s) (/cpu:0), 32 "
                             "updates per call"), lines
  assert lines[-1].startswith("Done: 64,000 frames, 100 updates"), lines
  run = tmp_path / "run"
  config = json.loads((run / "config.json").read_text())
  assert config["suite"] == "catch"
  assert json.loads((run / "result.json").read_text())["status"] == (
      "completed")
  # The progress lines' summaries: a learning curve as every run has.
  _, points = curves.curve(str(run))
  assert points and points[-1][0] <= 64_000

  second = _launch(tmp_path, "--total_frames=128000")
  assert second.returncode == 0, second.stdout + second.stderr
  assert "Restored " in second.stdout and " at 64,000 frames" in (
      second.stdout), second.stdout
  assert second.stdout.splitlines()[-1].startswith(
      "Done: 128,000 frames, 200 updates"), second.stdout
  result = json.loads((run / "result.json").read_text())
  assert result["num_frames"] == 128_000 and result["status"] == "completed"
  assert result["mean_return"] >= 0.9, result

  # The exported policy plays the Python version of the game.
  policy = evaluation.Policy(str(run / "saved_model"))
  report = evaluation.evaluate(policy, episodes=100, num_envs=8,
                               show_progress=False, log=lambda _: None)
  assert report["levels"]["catch"]["mean"] >= 0.9, report["levels"]


def _plans(tmp_path, *flag_sets):
  from impala_tf import launch_flags  # pylint: disable=g-import-not-at-top
  return [launch_flags.plan_from_argv(
      ["impala_tf.launch", "--suite=catch", "--run_mode=anakin",
       f"--logdir={tmp_path / f'run{i}'}", "--log_interval_s=1", *flags],
      environ={}) for i, flags in enumerate(flag_sets)]


@pytest.mark.slow
def test_runs_trained_together_keep_their_own_agents_and_directories(
    tmp_path):
  import threading  # pylint: disable=g-import-not-at-top
  from impala_tf.anakin import together  # pylint: disable=g-import-not-at-top
  plans = _plans(tmp_path, ["--seed=0", "--total_frames=10240"],
                 ["--seed=1", "--total_frames=10240",
                  "--entropy_cost=0.02"])
  lines = []
  results = together.train_together(plans, stop=threading.Event(),
                                    log=lines.append)
  assert [r.num_frames for r in results] == [10_240, 10_240]
  assert [r.num_updates for r in results] == [16, 16]
  for i, plan in enumerate(plans):
    run = tmp_path / f"run{i}"
    record = json.loads((run / "result.json").read_text())
    assert record["status"] == "completed" and record["num_frames"] == 10_240
    assert json.loads((run / "config.json").read_text())["config"][
        "entropy_cost"] == plan.experiment.config.entropy_cost
    assert (run / "saved_model").is_dir() and (run / "checkpoints").is_dir()
    assert any(line.startswith(f"[run{i}] Done: 10,240 frames, 16 updates")
               for line in lines), lines
  # Two agents: their own seeds, hyperparameters and so their own games.
  assert results[0].episodes != results[1].episodes or (
      results[0].mean_returns != results[1].mean_returns)


def test_runs_that_cannot_share_a_program_are_refused(tmp_path):
  from impala_tf.anakin import together  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="share their frame budget and the "
                     "frames of an update"):
    together.check_together(_plans(tmp_path, ["--total_frames=10240"],
                                   ["--total_frames=20480"]))
  with pytest.raises(ValueError, match="need --run_mode=anakin"):
    together.check_together(_plans(tmp_path, []) + [
        plan_lib.resolve({"suite": "catch", "logdir": "x"}, {})])


def _vectorised(agents, xla=False, **overrides):
  """`agents` Catch learners (seeds 0..agents-1) and their vectorised
  trainer."""
  from impala_tf.anakin import vectorised  # pylint: disable=g-import-not-at-top
  exp = experiment.build("catch")
  config = exp.config.replace(**overrides)
  make = lambda seed=None: learner_lib.Learner(
      config, exp.make_network, exp.observation_spec,
      strategy=learner_lib.make_strategy(["/cpu:0"]), xla_gradients=xla,
      seed=seed)
  learners = [make(seed) for seed in range(agents)]
  return learners, vectorised.Vectorised(
      catch.Catch(), learners, make, config.batch_size, seed=0, xla=xla)


@pytest.mark.parametrize("overrides", [{}, {"passes_per_batch": 2,
                                            "ppo_clip": 0.2,
                                            "max_grad_norm": 0.5},
                                       {"use_lstm": True}],
                         ids=["paper", "two_passes_clipped", "lstm"])
def test_vectorised_agents_make_each_agents_own_update(overrides):
  """Stacked weights, wider kernels: every agent's acting, losses, clip
  and RMSProp step are the ones its own learner makes of its own
  trajectories (which alternate in the vectorised batch)."""
  learners, vec = _vectorised(3, **overrides)
  carry = vec.initial_carry()
  vec._load()  # pylint: disable=protected-access
  with networks.reading(vec.template.network, vec.variables):
    batch, _ = vec.trainer._unroll(carry)  # pylint: disable=protected-access
  assert batch["reward"].shape[0] == 3 * 32
  own_batches = [tf.nest.map_structure(lambda x, a=a: x[a::3], batch)
                 for a in range(3)]
  # Acting: each agent's behaviour logits are its own network's.
  for learner, own in zip(learners, own_batches):
    inputs = networks.AgentInput(
        prev_action=tf.transpose(own["prev_action"]),
        reward=tf.transpose(own["reward"]), done=tf.transpose(own["done"]),
        observation={"frame": tf.transpose(own["frame"], [1, 0, 2, 3, 4])})
    state = (snt.LSTMState(hidden=own["core_state_h"],
                           cell=own["core_state_c"])
             if "core_state_h" in own else ())
    outputs, _ = learner.network.unroll(inputs, state)
    np.testing.assert_allclose(
        tf.transpose(outputs.policy_logits, [1, 0, 2]),
        own["behaviour_logits"], rtol=1e-5, atol=1e-5)
  step = tf.function(vec._step)  # pylint: disable=protected-access
  learning_rate = vec.template.learning_rate(0)
  logs = {k: v.numpy() for k, v in step(batch, learning_rate).items()}
  for agent, (learner, own) in enumerate(zip(learners, own_batches)):
    expected = learner.update(own)
    for name in ("total_loss", "pg_loss", "baseline_loss", "entropy_loss",
                 "grad_norm", "mean_vs"):
      np.testing.assert_allclose(logs[name][agent], expected[name],
                                 rtol=2e-4, atol=1e-5, err_msg=name)
    assert logs["applied"][agent] and logs["finite"][agent]
    for stacked, own_variable in zip(vec.variables, learner.variables):
      np.testing.assert_allclose(stacked[agent].numpy(), own_variable.numpy(),
                                 rtol=1e-4, atol=1e-6,
                                 err_msg=own_variable.name)
    for stacked, own_slot in zip(vec.optimizer.variables,
                                 learner.optimizer.variables):
      np.testing.assert_allclose(stacked[agent].numpy(), own_slot.numpy(),
                                 rtol=1e-4, atol=1e-7)
  # The agents started from different weights (their seeds).
  assert not np.allclose(vec.variables[0][0], vec.variables[0][1])


def test_a_vectorised_agent_whose_update_is_not_finite_keeps_its_weights():
  learners, vec = _vectorised(2)
  carry = vec.initial_carry()
  vec._load()  # pylint: disable=protected-access
  with networks.reading(vec.template.network, vec.variables):
    batch, _ = vec.trainer._unroll(carry)  # pylint: disable=protected-access
  # Agent 1's rewards (odd trajectories) made NaN.
  reward = batch["reward"].numpy()
  reward[1::2, 1] = np.nan
  batch = dict(batch, reward=tf.constant(reward))
  before = [v.numpy() for v in vec.variables + list(vec.optimizer.variables)]
  logs = tf.function(vec._step)(batch, vec.template.learning_rate(0))  # pylint: disable=protected-access
  assert logs["finite"].numpy().tolist() == [True, False]
  assert logs["applied"].numpy().tolist() == [True, False]
  after = [v.numpy() for v in vec.variables + list(vec.optimizer.variables)]
  assert all(np.array_equal(b[1], a[1]) for b, a in zip(before, after))
  assert not all(np.array_equal(b[0], a[0]) for b, a in zip(before, after))
  del learners


@pytest.mark.slow
def test_vectorised_agents_learn_catch_in_their_own_directories(tmp_path):
  import threading  # pylint: disable=g-import-not-at-top
  from impala_tf.anakin import together  # pylint: disable=g-import-not-at-top
  plans = _plans(tmp_path, ["--seed=0"], ["--seed=1"])
  lines = []
  results = together.train_together(plans, stop=threading.Event(),
                                    log=lines.append, vectorise=True)
  assert any("2 agents in one compiled program, vectorised" in line
             for line in lines), lines
  # On a CPU, with XLA and a convolutional torso, the run says what that
  # costs (docs/benchmarks.md).
  assert any("XLA's grouped convolutions on a CPU" in line
             for line in lines), lines
  for i, result in enumerate(results):
    assert result.num_frames == 128_000 and result.num_updates == 200
    assert result.mean_returns["catch"] >= 0.9, result
    run = tmp_path / f"run{i}"
    record = json.loads((run / "result.json").read_text())
    assert record["status"] == "completed"
    assert (run / "saved_model").is_dir() and (run / "checkpoints").is_dir()
    assert any(line.startswith(f"[run{i}] Done: 128,000 frames, 200 updates")
               for line in lines), lines


def test_runs_that_cannot_be_vectorised_are_refused(tmp_path):
  from impala_tf.anakin import vectorised  # pylint: disable=g-import-not-at-top
  plans = _plans(tmp_path, ["--seed=0"], ["--seed=1", "--entropy_cost=0.02"])
  with pytest.raises(ValueError, match="differ only in their seed; these "
                     "runs also differ in entropy_cost"):
    vectorised.check_vectorisable([p.experiment for p in plans])
  plans = _plans(tmp_path, ["--optimizer=adam"], ["--optimizer=adam"])
  with pytest.raises(ValueError, match="trained with RMSProp; these runs "
                     "have the adam optimiser"):
    vectorised.check_vectorisable([p.experiment for p in plans])
