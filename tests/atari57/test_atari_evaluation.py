"""The evaluation protocol (1-30 no-ops, mean over episodes) on real Pong."""

import dm_env
import numpy as np
import pytest

import atari57


class RecordingRandomPolicy:
  """Uniformly random actions; records what it was shown."""

  def __init__(self, num_actions, seed):
    self._rng = np.random.default_rng(seed)
    self._num_actions = num_actions
    self.step_types = []

  def __call__(self, timestep):
    self.step_types.append(timestep.step_type)
    return int(self._rng.integers(self._num_actions))


def test_random_pong_scores_like_the_random_reference():
  policy = RecordingRandomPolicy(6, seed=0)
  result = atari57.evaluate("pong", policy, num_episodes=3, seed=1)
  assert result.scores.shape == result.lengths.shape == result.noops.shape == (3,)
  # Whole games of random Pong: the opponent wins 21 points, the random
  # player rarely scores; the reference random score is -20.7.
  assert np.all(result.scores <= -15) and np.all(result.scores >= -21)
  assert np.all(result.scores == np.round(result.scores))
  assert result.mean_score == pytest.approx(result.scores.mean())
  assert -1 <= atari57.normalized_score("pong", result.mean_score) <= 20
  assert np.all(result.lengths > 500)
  # The policy acts on every step after the no-ops, and each episode starts
  # for it with a FIRST timestep.
  assert len(policy.step_types) == (result.lengths - result.noops).sum()
  assert policy.step_types.count(dm_env.StepType.FIRST) == 3
  assert policy.step_types[0] == dm_env.StepType.FIRST

  again = atari57.evaluate("pong", RecordingRandomPolicy(6, seed=0),
                           num_episodes=3, seed=1)
  np.testing.assert_array_equal(again.scores, result.scores)
  np.testing.assert_array_equal(again.lengths, result.lengths)


def test_noop_starts_are_uniform_between_1_and_max_noops():
  # Episodes capped at 160 frames = 40 agent steps keep this cheap.
  policy = RecordingRandomPolicy(6, seed=2)
  result = atari57.evaluate("Pong", policy, num_episodes=60, seed=3,
                            max_episode_frames=160)
  assert result.noops.min() >= 1 and result.noops.max() <= 30
  assert len(np.unique(result.noops)) >= 15
  assert np.all(result.lengths == 40)
  assert len(policy.step_types) == (40 - result.noops).sum()

  small = atari57.evaluate("pong", policy, num_episodes=20, max_noops=2,
                           seed=3, max_episode_frames=160)
  assert set(small.noops) == {1, 2}


def test_evaluate_rejects_ale_noops_and_bad_counts():
  policy = RecordingRandomPolicy(6, seed=0)
  with pytest.raises(ValueError, match="pass max_noops instead of noop_max"):
    atari57.evaluate("pong", policy, noop_max=30)
  with pytest.raises(ValueError, match="num_episodes must be >= 1"):
    atari57.evaluate("pong", policy, num_episodes=0)
  with pytest.raises(ValueError, match="max_noops must be >= 1"):
    atari57.evaluate("pong", policy, max_noops=0)
