"""A controlled policy lag (App. E.1): every trajectory trained on was made
with weights exactly k updates old; k = 0 is on-policy."""

import threading

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.acting import actor as actor_lib
from impala_tf.acting import actor_loop
from impala_tf.config import experiment
from impala_tf.runtime import faults
from impala_tf.roles import threads
from impala_tf import learner_loop
from impala_tf.config import presets


class _Lags(learner_loop.LoopPart):
  def __init__(self):
    self.lags = []

  def after_update(self, loop, update):
    self.lags.append(update.policy_lag)


@pytest.mark.parametrize("lag", [0, 2])
def test_every_trajectory_is_exactly_k_updates_old(lag):
  config = presets.CATCH.replace(batch_size=8, unroll_length=5,
                                 policy_lag=lag, total_frames=12 * 8 * 5)
  # Two actors of 4 environments: exactly one batch per weights version.
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  part = _Lags()
  result = threads.train_in_process(exp, num_actors=2,
                                       log=lambda _: None,
                                       extra_parts=[part])
  assert result.num_updates == 12
  lags = np.concatenate(part.lags)
  # The first k updates train on version 0 (no older weights exist).
  expected = np.concatenate([np.arange(lag), np.full(12 - lag, lag)])
  np.testing.assert_array_equal([int(l.max()) for l in part.lags], expected)
  np.testing.assert_array_equal([int(l.min()) for l in part.lags], expected)
  assert lags.size == 12 * 8


def test_a_lag_the_actors_could_never_feed_is_refused():
  config = presets.CATCH.replace(batch_size=8, unroll_length=5, policy_lag=1)
  exp = experiment.build("catch", config=config, envs_per_actor=3)
  with pytest.raises(ValueError, match=r"2 actors x 3 environments = 6"):
    threads.train_in_process(exp, num_actors=2, log=lambda _: None)
  experiment.check_policy_lag(exp, num_actors=3)  # 9 >= 8: accepted.


def _train_with_deadline(exp, part, deadline_s=120, **kwargs):
  """Trains; a run that stops making updates is stopped at the deadline
  (and the test then fails on the update count, instead of hanging)."""
  stop = threading.Event()
  timer = threading.Timer(deadline_s, stop.set)
  timer.start()
  try:
    return threads.train_in_process(exp, num_actors=2, log=lambda _: None,
                                       extra_parts=[part], stop=stop,
                                       **kwargs)
  finally:
    timer.cancel()


def test_a_resumed_lagged_run_goes_on_with_lag_k(tmp_path):
  config = presets.CATCH.replace(batch_size=8, unroll_length=5, policy_lag=2,
                                 total_frames=6 * 8 * 5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  _train_with_deadline(exp, _Lags(), logdir=str(tmp_path))
  longer = experiment.build("catch", config=config.replace(
      total_frames=12 * 8 * 5), envs_per_actor=4)
  part = _Lags()
  result = _train_with_deadline(longer, part, logdir=str(tmp_path))
  assert result.num_updates == 12
  # After the restore at update 6 the restored weights are the only
  # version kept: lags 0, 1, then exactly 2, as at a run's start.
  np.testing.assert_array_equal([int(l.max()) for l in part.lags],
                                [0, 1, 2, 2, 2, 2])
  np.testing.assert_array_equal([int(l.min()) for l in part.lags],
                                [0, 1, 2, 2, 2, 2])


def test_a_skipped_update_does_not_stall_a_lagged_run(monkeypatch):
  monkeypatch.setenv(faults.ENV_VAR, "nonfinite_loss:once")
  config = presets.CATCH.replace(batch_size=8, unroll_length=5, policy_lag=1,
                                 total_frames=6 * 8 * 5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  part = _Lags()
  result = _train_with_deadline(exp, part)
  # The frame budget is reached (its frames count even for the skipped
  # update): the actors went on after it.
  assert result.num_frames == 6 * 8 * 5
  assert len(part.lags) == 6 and result.num_updates == 5  # One skipped.


def test_every_step_of_an_unroll_acts_with_the_weights_it_is_tagged_with():
  exp = experiment.build("catch", config=presets.CATCH.replace(
      unroll_length=5), envs_per_actor=3)
  network = actor_loop.build_actor_network(exp)
  actor = actor_lib.Actor(exp.make_env(0, seed=0), network, 5,
                          level_ids=exp.level_ids(0), seed=0)
  first = actor.unroll(policy_version=0)
  assert np.abs(first["behaviour_logits"]).max() > 0
  for variable in network.trainable_variables:
    variable.assign(tf.zeros_like(variable))  # Version 1: uniform policy.
  actor.refresh_first_step()
  second = actor.unroll(policy_version=1)
  # Its first step (the last of the unroll before) included.
  np.testing.assert_array_equal(second["behaviour_logits"], 0.0)
