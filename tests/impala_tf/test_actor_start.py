"""Actors start an unroll only while the queue holds fewer trajectories than
the learner's threshold (`--actor_start_below`), so a learner-bound run's
queue holds about one batch instead of its whole capacity."""

import threading
import time

import pytest

from impala_tf.acting import actor_loop
from impala_tf.config import experiment
from impala_tf.roles import threads
from impala_tf import learner_loop
from impala_tf.config import presets
from impala_tf.runtime import channels as channels_lib
from impala_tf.runtime import queue as queue_runtime
from impala_tf.runtime import server as server_lib
from impala_tf.runtime import weights as weights_runtime


def _queued_when_settled(exp, start_below, capacity=16):
  """Runs one actor thread against a queue nobody dequeues and returns how
  many trajectories it holds once the actor has stopped adding any."""
  network = actor_loop.build_actor_network(exp)
  channels = channels_lib.host(
      exp, weights_runtime.num_elements(network.trainable_variables),
      capacity, server_lib.LOCAL_CPU, suffix=f"_start_{start_below}",
      start_below=start_below)
  channels.weights.publish(weights_runtime.flatten(
      network.trainable_variables), 0)
  stop = threading.Event()
  thread = threading.Thread(target=actor_loop.run_actor, args=(exp, 0,
                                                               channels),
                            kwargs=dict(stop=stop, network=network,
                                        log=lambda _: None), daemon=True)
  thread.start()
  try:
    sizes = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
      time.sleep(0.5)
      sizes.append(channels.queue.size())
      if len(sizes) >= 4 and len(set(sizes[-4:])) == 1 and sizes[-1] > 0:
        break
    return sizes[-1]
  finally:
    stop.set()
    channels.queue.close(cancel_pending_enqueues=True)
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_an_actor_stops_unrolling_once_the_threshold_is_queued():
  exp = experiment.build("catch", config=presets.CATCH.replace(
      unroll_length=5), envs_per_actor=2)
  # Unrolls of 2: it starts at 0, 2 and 4 queued (< 5), not at 6.
  assert _queued_when_settled(exp, start_below=5) == 6
  # With no threshold it fills the queue to its capacity.
  assert _queued_when_settled(exp, start_below=0) == 16


def test_trajectories_the_learner_already_waits_for_do_not_count():
  exp = experiment.build("catch", config=presets.CATCH.replace(
      unroll_length=5), envs_per_actor=2)
  network = actor_loop.build_actor_network(exp)
  channels = channels_lib.host(
      exp, weights_runtime.num_elements(network.trainable_variables), 16,
      server_lib.LOCAL_CPU, suffix="_demand", start_below=3)
  channels.weights.publish(weights_runtime.flatten(
      network.trainable_variables), 0)
  taken = []
  # The learner waits for a batch of 8 before anything is queued (the
  # actors are the bottleneck): the actor must go on past 3 queued.
  learner = threading.Thread(
      target=lambda: taken.append(channels.queue.dequeue_many(8)),
      daemon=True)
  learner.start()
  stop = threading.Event()
  actor = threading.Thread(target=actor_loop.run_actor, args=(exp, 0,
                                                              channels),
                           kwargs=dict(stop=stop, network=network,
                                       log=lambda _: None), daemon=True)
  actor.start()
  try:
    learner.join(timeout=60)
    assert taken and taken[0]["reward"].shape[0] == 8
    # With nothing waited for any more, the threshold holds again.
    time.sleep(2.0)
    assert channels.queue.size() == 4  # Started at 0 and 2, not at 4.
  finally:
    stop.set()
    channels.queue.close(cancel_pending_enqueues=True)
    actor.join(timeout=30)


def test_attached_actors_learn_the_learners_threshold():
  exp = experiment.build("catch", config=presets.CATCH, envs_per_actor=2)
  specs = exp.trajectory_specs()
  queue_runtime.TrajectoryQueue.create(specs, 8, server_lib.LOCAL_CPU,
                                       shared_name="q_threshold",
                                       start_below=3)
  attached = queue_runtime.TrajectoryQueue.attach(
      specs, server_lib.LOCAL_CPU, shared_name="q_threshold")
  assert attached.start_below == 3
  with pytest.raises(ValueError, match=r"start_below must be in \[0, "
                     r"capacity=8\], got 9"):
    queue_runtime.TrajectoryQueue.create(specs, 8, server_lib.LOCAL_CPU,
                                         shared_name="q_bad", start_below=9)


def test_a_closed_queue_ends_the_wait_to_start():
  exp = experiment.build("catch", config=presets.CATCH.replace(
      unroll_length=5), envs_per_actor=2)
  queue = queue_runtime.TrajectoryQueue.create(
      exp.trajectory_specs(), 4, server_lib.LOCAL_CPU,
      shared_name="q_closed_start", start_below=1)
  actor_queue = queue_runtime.TrajectoryQueue.attach(
      exp.trajectory_specs(), server_lib.LOCAL_CPU,
      shared_name="q_closed_start")
  network = actor_loop.build_actor_network(exp)
  from impala_tf.acting import actor as actor_lib  # pylint: disable=g-import-not-at-top
  actor = actor_lib.Actor(exp.make_env(0, seed=0), network, 5,
                          level_ids=exp.level_ids(0), seed=0)
  actor_queue.enqueue_many(actor.unroll(policy_version=0))
  threading.Timer(1.0, queue.close).start()
  started = time.monotonic()
  with pytest.raises(queue_runtime.QueueClosedError):
    actor_queue.wait_to_start()  # 2 queued >= 1: waits until the close.
  assert time.monotonic() - started >= 0.9


def test_a_threshold_above_the_capacity_is_refused():
  exp = experiment.build("catch", config=presets.CATCH, envs_per_actor=4)
  with pytest.raises(ValueError, match=r"--actor_start_below=80 must be "
                     r"between 0 .* and the queue capacity \(64\)"):
    threads.train_in_process(exp, num_actors=2, queue_capacity=64,
                                actor_start_below=80, log=lambda _: None)


class _SlowLearner(learner_loop.LoopPart):
  """Makes the learner the bottleneck (each update takes 0.25 s more) and
  keeps the policy lag of what it trains on."""

  def __init__(self):
    self.lags = []

  def after_update(self, loop, update):
    self.lags.append(update.policy_lag.mean())
    time.sleep(0.25)


@pytest.mark.parametrize("start_below,most,least", [(None, 2.0, 0.0),
                                                    (0, 99, 4.0)])
def test_a_learner_bound_run_trains_on_trajectories_two_updates_old(
    start_below, most, least):
  config = presets.CATCH.replace(batch_size=8, unroll_length=5,
                                 total_frames=30 * 8 * 5)
  exp = experiment.build("catch", config=config, envs_per_actor=4)
  part = _SlowLearner()
  result = threads.train_in_process(
      exp, num_actors=2, queue_capacity=48, actor_start_below=start_below,
      log=lambda _: None, extra_parts=[part])
  assert result.num_updates == 30
  # Past the start (the queue filling up), the mean lag: 2 with the default
  # threshold (one batch less one unroll, 4: one update queued, one
  # staged), about capacity / batch + 1 = 7 with none.
  steady = sum(part.lags[10:]) / len(part.lags[10:])
  assert least <= steady <= most, part.lags
