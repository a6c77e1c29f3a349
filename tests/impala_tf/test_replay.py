"""Experience replay on the learner: FIFO eviction, uniform sampling, the
memory check, and batches that mix fresh and replayed trajectories."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.config import experiment
from impala_tf.roles import threads
from impala_tf import learner_loop
from impala_tf.config import presets
from impala_tf.agent import replay


def _specs():
  return {"seq": tf.TensorSpec([], tf.int64),
          "behaviour_logits": tf.TensorSpec([3, 2], tf.float32)}


def _items(start, n):
  seq = np.arange(start, start + n)
  return {"seq": seq, "behaviour_logits": np.stack(
      [np.full([3, 2], s, np.float32) for s in seq])}


def test_the_oldest_trajectories_go_first_and_samples_are_uniform():
  buffer = replay.ReplayBuffer(_specs(), capacity=10, seed=0)
  buffer.add(_items(0, 6))
  buffer.add(_items(6, 6))  # 12 added, 10 kept: 0 and 1 are evicted.
  assert buffer.size == 10
  sample = buffer.sample(20_000)
  assert set(sample["seq"]) == set(range(2, 12))
  counts = np.bincount(sample["seq"], minlength=12)[2:]
  assert counts.min() > 1_800 and counts.max() < 2_200  # 2,000 each.
  # Each trajectory keeps its own behaviour logits.
  np.testing.assert_array_equal(sample["behaviour_logits"][:, 0, 0],
                                sample["seq"])


def test_a_buffer_that_would_not_fit_is_refused_with_the_figures():
  exp = experiment.build("atari57", ["pong"])
  specs = exp.trajectory_specs()
  per = replay.bytes_per_trajectory(specs)
  assert 160_000 < per < 180_000  # Frames sent once per step: ~170 kB.
  needed = replay.check_fits(specs, 10_000, available=8 * 2**30)
  assert needed == 10_000 * per  # 1.6 GiB: Table D.3's 10,000 fit in 8 GiB.
  with pytest.raises(replay.ReplayMemoryError,
                     match=r"--replay_capacity=10,000 needs 1\.6 GiB "
                     r"\(170 kB per trajectory\) but this machine has 1\.0 "
                     r"GiB available; lower --replay_capacity to at most "
                     r"6,3\d\d\."):
    replay.check_fits(specs, 10_000, available=2**30)
  dmlab = experiment.build("dmlab30", ["rooms_watermaze"])
  # DMLab trajectories (101 frames of 72x96x3) are ~2.1 MB: 10,000 is 20 GiB.
  assert replay.bytes_per_trajectory(dmlab.trajectory_specs()) > 2_000_000


class _Batches(learner_loop.LoopPart):
  def __init__(self):
    self.policy_lags = []
    self.frames = []

    self.logits = []     # Each update's behaviour logits, [B, T+1, A].
    self.replayed = []
    self.episodes = []   # Finished episodes in fresh trajectories.
    self.counted = []    # The loop's episode count after each update.

  def after_update(self, loop, update):
    self.policy_lags.append(update.policy_lag)
    self.frames.append(loop.num_frames)
    self.logits.append(update.batch["behaviour_logits"].numpy())
    self.replayed.append(np.asarray(update.replayed))
    done = update.batch["done"].numpy()[:, 1:]
    self.episodes.append(int(done[~update.replayed].sum()))
    self.counted.append(loop.episodes.total)


def test_half_of_every_batch_comes_from_replay_and_only_fresh_frames_count(
    tmp_path):
  config = presets.CATCH.replace(batch_size=8, unroll_length=5,
                                 replay_capacity=40, replay_fraction=0.5,
                                 total_frames=10 * 8 * 5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  part = _Batches()
  lines = []
  threads.train_in_process(exp, num_actors=1, log=lines.append,
                              extra_parts=[part], logdir=str(tmp_path))
  assert any("Replay: 40 trajectories" in line and "4 of every 8" in line
             for line in lines), lines
  # Until the buffer holds a batch, all 8 are fresh; then 4 fresh + 4
  # replayed, and frames grow by the fresh ones only.
  fresh = [len(lag) for lag in part.policy_lags]
  assert fresh[0] == 8 and set(fresh[1:]) == {4}
  steps = np.diff([0] + part.frames)
  np.testing.assert_array_equal(steps, np.array(fresh) * 5)

  # Replayed trajectories are earlier batches' fresh ones, behaviour logits
  # and all, never the same batch's.
  seen = []
  for logits, replayed in zip(part.logits, part.replayed):
    for trajectory in logits[replayed]:
      assert any(np.array_equal(trajectory, old) for old in seen)
    assert not any(np.array_equal(fresh, old) for fresh in logits[~replayed]
                   for old in seen)
    seen.extend(logits[~replayed])
  # Episodes are counted once, when their trajectory is fresh.
  assert part.counted == list(np.cumsum(part.episodes))
  assert sum(part.episodes) > 0
