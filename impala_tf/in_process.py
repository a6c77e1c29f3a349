"""The whole system in one process: the learner's loop in this thread and
the actors as threads (for tests and small runs; no TF server)."""

import threading
from typing import Callable, Optional, Sequence

import tensorflow as tf

from impala_tf import actor_loop
from impala_tf import experiment as experiment_lib
from impala_tf import learner as learner_lib
from impala_tf import learner_loop
from impala_tf.runtime import channels as channels_lib
from impala_tf.runtime import server as server_lib
from impala_tf.runtime import weights as weights_runtime


def train_in_process(experiment: experiment_lib.Experiment, num_actors: int,
                     *, queue_capacity: Optional[int] = None,
                     actor_start_below: Optional[int] = None,
                     logdir: Optional[str] = None, seed: int = 0,
                     log_interval_s: float = 5.0,
                     checkpoint_interval_s: float = 600.0,
                     log: Callable[[str], None] = print,
                     strategy: Optional[tf.distribute.Strategy] = None,
                     stop: Optional[threading.Event] = None,
                     extra_parts: Sequence[learner_loop.LoopPart] = (),
                     max_nonfinite_updates: int = 5
                     ) -> learner_loop.TrainingResult:
  """Trains `experiment` with `num_actors` actor threads; see
  `learner_loop.run_learner` for what the learner does with `logdir`,
  `extra_parts` and `max_nonfinite_updates`; `actor_start_below` as the
  launcher's flag (default: one batch less one actor's unroll)."""
  if num_actors < 1:
    raise ValueError(f"num_actors must be at least 1, got {num_actors}.")
  capacity = queue_capacity or experiment_lib.default_queue_capacity(
      experiment, num_actors)
  experiment_lib.check_queue_capacity(experiment, capacity)
  experiment_lib.check_policy_lag(experiment, num_actors)
  if actor_start_below is None:
    actor_start_below = experiment_lib.default_actor_start_below(experiment)
  experiment_lib.check_actor_start_below(capacity, actor_start_below)
  learner = learner_lib.Learner(experiment.config, experiment.make_network,
                                experiment.observation_spec,
                                strategy=strategy)
  # Unique names: several in-process runs may share one TF context.
  channels = channels_lib.host(
      experiment, weights_runtime.num_elements(learner.variables), capacity,
      server_lib.LOCAL_CPU, suffix=f"_{id(learner):x}",
      start_below=actor_start_below)
  stop = stop or threading.Event()
  errors = []

  def actor_thread(index):
    try:
      actor_loop.run_actor(experiment, index, channels, seed=seed, stop=stop,
                           log=log)
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
  if errors:
    raise RuntimeError(f"An actor thread failed: {errors[0]!r}") from errors[0]
  return result
