"""The learner's loop in parts: episode statistics, and a part added from
outside that sees every hook in order."""

import time

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.config import experiment
from impala_tf.roles import threads
from impala_tf.agent import learner as learner_lib
from impala_tf import learner_loop
from impala_tf.config import presets
from impala_tf.learner_loop import episodes
from impala_tf.learner_loop import loop as loop_lib
from impala_tf.learner_loop import progress as progress_lib


def test_episode_stats_skip_the_repeated_first_step_and_split_levels():
  stats = episodes.EpisodeStats(["a", "b"])
  returns = np.full((2, 4), np.nan, np.float32)
  returns[0, 0] = 99.0  # Step 0 repeats the previous unroll: not counted.
  returns[0, 2] = 3.0
  returns[1, 3] = -1.0
  stats.add(returns, np.array([0, 1]))
  assert stats.mean_returns() == {"a": 3.0, "b": -1.0}
  assert stats.counts == [1, 1]


def test_episode_stats_come_back_from_a_checkpoint_with_their_window(
    tmp_path):
  stats = episodes.EpisodeStats(["a", "b"])
  stats._record([(0, float(v)) for v in range(150)] + [(1, -2.0), (1, 4.0)])  # pylint: disable=protected-access
  stats.to_checkpoint()
  path = tf.train.Checkpoint(episodes=stats.checkpointable()).write(
      str(tmp_path / "ckpt"))
  again = episodes.EpisodeStats(["a", "b"])
  tf.train.Checkpoint(episodes=again.checkpointable()).read(path)
  again.from_checkpoint()
  assert again.counts == [150, 2]
  assert again.mean_returns() == {"a": np.mean(range(50, 150)), "b": 1.0}
  # The oldest of level a's 100 games leaves first, as before the save.
  again._record([(0, 250.0)])  # pylint: disable=protected-access
  assert again.mean_returns()["a"] == pytest.approx(
      np.mean(list(range(51, 150)) + [250]))


class RecordingPart(learner_loop.LoopPart):
  """Records the hooks it sees and what the loop shows it."""

  def __init__(self):
    self.calls = []
    self.frames_seen = []

  def start(self, loop):
    self.calls.append("start")
    self.start_frames = loop.num_frames

  def after_update(self, loop, update):
    self.calls.append("after_update")
    self.frames_seen.append(loop.num_frames)
    assert update.policy_lag.shape == (loop.experiment.config.batch_size,)
    assert (update.policy_lag >= 0).all()
    assert "total_loss" in update.logs

  def tick(self, loop, now):
    self.calls.append("tick")

  def end(self, loop):
    self.calls.append("end")


def test_a_part_added_from_outside_sees_every_hook_in_order(tmp_path):
  config = presets.CATCH.replace(batch_size=8, unroll_length=5,
                                 total_frames=4 * 8 * 5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  part = RecordingPart()
  lines = []
  result = threads.train_in_process(exp, num_actors=1,
                                       logdir=str(tmp_path), log=lines.append,
                                       extra_parts=[part])
  assert result.num_updates == 4
  assert part.calls[0] == "start" and part.calls[-1] == "end"
  # Every update is followed by a tick.
  body = part.calls[1:-1]
  updates = [i for i, c in enumerate(body) if c == "after_update"]
  assert len(updates) == 4
  assert all(body[i + 1] == "tick" for i in updates)
  assert part.start_frames == 0
  assert part.frames_seen == [8 * 5 * k for k in range(1, 5)]
  assert lines[-1].startswith("Done: 160 frames, 4 updates")


class _FirstWeights(learner_loop.LoopPart):
  """The learner's weights when the run starts."""

  def start(self, loop):
    self.weights = [v.numpy() for v in loop.learner.variables]


def test_the_seed_draws_the_networks_first_weights():
  config = presets.CATCH.replace(batch_size=8, unroll_length=5,
                                 total_frames=8 * 5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)

  def first_weights(seed):
    part = _FirstWeights()
    tf.random.normal([3])  # Draws made before the run do not matter.
    threads.train_in_process(exp, num_actors=1, seed=seed,
                             log=lambda _: None, extra_parts=[part])
    return part.weights

  first, again, other = first_weights(3), first_weights(3), first_weights(4)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert any((a != c).any() for a, c in zip(first, other))


class _BrokenQueue:
  """A trajectory queue whose dequeue fails as a remote op might."""

  def __init__(self):
    self.closed = False

  def dequeue_many(self, n):
    raise tf.errors.InternalError(None, None, "disk on fire")

  def size(self):
    return 0

  def close(self, cancel_pending_enqueues=True):
    del cancel_pending_enqueues
    self.closed = True


def test_a_failing_stager_ends_the_loop_with_one_clear_error():
  exp = experiment.build("catch")
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec)
  broken = _BrokenQueue()
  loop = loop_lib.LearnerLoop(exp, learner, loop_lib.QueueSource(broken), [])
  start = time.monotonic()
  with pytest.raises(loop_lib.StagingError,
                     match="batch staging failed: InternalError: disk on "
                     "fire"):
    loop.run()
  assert time.monotonic() - start < 30
  assert broken.closed
  assert isinstance(loop.error, loop_lib.StagingError)


class _CountingQueue:
  """Hands out zero trajectories of `specs` and counts what it hands out."""

  def __init__(self, specs):
    self.specs = specs
    self.taken = 0

  def dequeue_many(self, n):
    self.taken += n
    return {k: tf.zeros([n] + s.shape.as_list(), s.dtype)
            for k, s in self.specs.items()}


def test_the_stager_takes_at_most_one_batch_ahead_of_the_learner():
  exp = experiment.build("catch", config=presets.CATCH.replace(
      batch_size=4, unroll_length=5), envs_per_actor=4)
  source = _CountingQueue(exp.trajectory_specs())
  stager = loop_lib.BatchStager(source, 4, "/cpu:0")
  time.sleep(2.0)
  assert source.taken == 4  # The first batch, made before it is asked for.
  first = stager.get(timeout_s=30)
  assert first["reward"].shape[0] == 4
  time.sleep(2.0)
  # The next one, made while the first trains; no more until it is taken
  # (a batch out of the queue is one more update of policy lag).
  assert source.taken == 8
  stager.get(timeout_s=30)
  time.sleep(1.0)
  assert source.taken == 12


def test_the_last_progress_line_never_has_negative_time_left():
  # The last update overshoots the frame budget: the time left is 0.
  progress = {"frames": 307_200, "fps": 935.0, "updates_per_s": 0.1,
              "queue_fill": 0.0, "learner_wait": 0.0, "lag_mean": 1.0,
              "lag_max": 1, "logs": {}}
  line = progress_lib.progress_line(progress, {"catch": 0.5}, 3, elapsed=372,
                                    remaining=-7.0)
  assert line.endswith("| 0:06:12 elapsed, 0:00:00 left"), line


def test_a_progress_line_without_a_queue_leaves_out_queue_wait_and_lag():
  # Anakin mode: no trajectory queue, no waiting learner, no policy lag.
  progress = {"frames": 64_000, "fps": 50_000.0, "updates_per_s": 78.0,
              "queue_fill": None, "learner_wait": 0.0, "lag_mean": 0.0,
              "lag_max": 0, "logs": {}}
  line = progress_lib.progress_line(progress, {"catch": 0.5}, 3, elapsed=2,
                                    remaining=1.0)
  assert line.startswith("frames 64,000 | 50,000 f/s | 78.0 upd/s | "
                         "return 0.50 (3 eps) | "), line
  assert "queue" not in line and "lag" not in line
