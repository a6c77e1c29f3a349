"""Acting and learning in one compiled program (impala_tf/anakin)."""

import numpy as np
import pytest

from impala_tf import anakin
from impala_tf.agent import learner as learner_lib
from impala_tf.agent import trajectory
from impala_tf.config import experiment
from impala_tf.tfenvs import catch


def _anakin(devices, seed=0):
  exp = experiment.build("catch")
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec,
                                strategy=learner_lib.make_strategy(devices))
  return anakin.Anakin(catch.Catch(), learner,
                       envs_per_replica=exp.config.batch_size // len(devices),
                       seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("devices", [["/cpu:0"], ["/cpu:0", "/cpu:1"]],
                         ids=["one_device", "two_devices"])
def test_anakin_learns_catch(devices):
  trainer = _anakin(devices)
  carry = trainer.initial_carry()
  returns = []
  for _ in range(50):  # The preset's 128,000 frames: 200 updates.
    logs, carry = trainer.train(carry, 4)
    returns.append(float(logs["episode_return_sum"]) / float(logs["episodes"]))
  assert int(trainer.learner.num_frames) == 128_000
  assert int(trainer.learner.num_updates) == 200
  # A random policy scores about -0.6; solved is +1.
  assert np.mean(returns[-10:]) >= 0.9, returns


def test_an_anakin_unroll_is_an_actors_trajectory():
  trainer = _anakin(["/cpu:0"])
  carry = trainer.learner.strategy.experimental_local_results(
      trainer.initial_carry())[0]
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
