"""Threads mode: the whole system in one process, the learner's loop in
this thread and the actors as threads (for tests and small runs; no TF
server)."""

from __future__ import annotations

import itertools
import threading
from typing import Callable, Optional, Sequence

from impala_tf.config import experiment as experiment_lib
from impala_tf.config import plan as plan_lib
from impala_tf.roles import common
from impala_tf.roles import wiring

# Numbers the in-process runs of this process: their queues and weights
# get names of their own (several runs may share one TF context).
_RUNS = itertools.count()


def run(plan: plan_lib.RunPlan) -> None:
  """Runs `plan` (role "threads") until the frame budget is spent or
  SIGTERM/SIGINT stops it."""
  # Learner and actors share this process: the learner's choice.
  common.log(f"Learner and actor threads on "
             f"{common.configure_cpu(plan, 'learner')}.")
  for note in plan.notes:
    common.log(note)
  stop = threading.Event()
  common.stop_on_signals(stop)
  train_in_process(
      plan.experiment, plan.num_actors, queue_capacity=plan.queue_capacity,
      actor_start_below=plan.actor_start_below, logdir=plan.logdir,
      seed=plan.seed, log_interval_s=plan.loop.log_interval_s,
      checkpoint_interval_s=plan.loop.checkpoint_interval_s, log=common.log,
      stop=stop, max_nonfinite_updates=plan.loop.max_nonfinite_updates,
      extra_parts=common.extra_parts(plan), inference=plan.inference)


def train_in_process(experiment: experiment_lib.Experiment, num_actors: int,
                     *, queue_capacity: Optional[int] = None,
                     actor_start_below: Optional[int] = None,
                     logdir: Optional[str] = None, seed: int = 0,
                     log_interval_s: float = 5.0,
                     checkpoint_interval_s: float = 600.0,
                     log: Callable[[str], None] = print,
                     strategy=None,
                     stop: Optional[threading.Event] = None,
                     extra_parts: Sequence = (),
                     max_nonfinite_updates: int = 5,
                     inference: Optional[plan_lib.InferenceOptions] = None):
  """Trains `experiment` with `num_actors` actor threads; see
  `learner_loop.run_learner` for what the learner does with `logdir`,
  `extra_parts` and `max_nonfinite_updates`; `actor_start_below` as the
  launcher's flag (default: one batch less one actor's unroll);
  `inference`: central inference's options (default: each actor thread
  acts on its own copy of the policy). Returns the loop's
  `learner_loop.TrainingResult`."""
  from impala_tf.acting import actor_loop  # pylint: disable=g-import-not-at-top
  from impala_tf import learner_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  if num_actors < 1:
    raise ValueError(f"num_actors must be at least 1, got {num_actors}.")
  capacity, actor_start_below = experiment_lib.resolve_queue(
      experiment, num_actors, queue_capacity, actor_start_below)
  # Unique names: several in-process runs may share one TF context.
  learner, channels = wiring.wire_learner(
      experiment, capacity, actor_start_below, server_lib.LOCAL_CPU,
      suffix=f"_run{next(_RUNS)}",
      strategy=strategy, seed=seed)
  stop = stop or threading.Event()
  errors = []
  server = None
  if inference is not None and inference.central:
    from impala_tf.inference import server as inference_server  # pylint: disable=g-import-not-at-top
    from impala_tf.inference import transport  # pylint: disable=g-import-not-at-top
    server = inference_server.InferenceServer.from_options(
        experiment, channels.weights, inference, log=log,
        max_batch=num_actors * experiment.envs_per_actor).start()
    extra_parts = [*extra_parts, inference_server.InferenceReport(server)]

  def run_one(index):
    if server is None:
      actor_loop.run_actor(experiment, index, channels, seed=seed, stop=stop,
                           log=log)
    else:
      actor_loop.run_central_actor(
          experiment, index, channels.queue,
          lambda: transport.LocalConnection(server),
          groups=inference.groups, seed=seed, stop=stop, log=log)

  def actor_thread(index):
    try:
      run_one(index)
    except BaseException as error:  # Reported by the learner thread below.
      errors.append(error)
      stop.set()
      raise

  threads = [threading.Thread(target=actor_thread, args=(i,), daemon=True,
                              name=f"actor-{i}") for i in range(num_actors)]
  for thread in threads:
    thread.start()
  try:
    result = learner_loop.run_learner(
        experiment, learner, channels, queue_capacity=capacity,
        logdir=logdir, log_interval_s=log_interval_s,
        checkpoint_interval_s=checkpoint_interval_s, stop=stop, log=log,
        extra_parts=extra_parts, max_nonfinite_updates=max_nonfinite_updates)
  finally:
    stop.set()
    channels.queue.close(cancel_pending_enqueues=True)
    for thread in threads:
      thread.join(timeout=30)
    if server is not None:
      server.stop()
  if errors:
    raise RuntimeError(f"An actor thread failed: {errors[0]!r}") from errors[0]
  return result
