"""A controlled policy lag (App. E.1): every trajectory trained on was made
with weights exactly k updates old; k = 0 is on-policy."""

import numpy as np
import pytest

from impala_tf import experiment
from impala_tf import in_process
from impala_tf import learner_loop
from impala_tf import presets


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
  result = in_process.train_in_process(exp, num_actors=2,
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
    in_process.train_in_process(exp, num_actors=2, log=lambda _: None)
  experiment.check_policy_lag(exp, num_actors=3)  # 9 >= 8: accepted.
