"""The learner wired to its channels: one place for the learner process and
threads mode."""

from __future__ import annotations

from typing import Optional

from impala_tf.config import experiment as experiment_lib


def wire_learner(exp: experiment_lib.Experiment, queue_capacity: int,
                 actor_start_below: int, device: str, *, suffix: str = "",
                 strategy=None, seed: Optional[int] = None):
  """(learner, channels): the replicated update step for `exp` and the
  trajectory queue and published weights it hosts on `device`.

  Args:
    exp: the experiment.
    queue_capacity, actor_start_below: the queue's, as the plan resolved
      them (`plan.RunPlan`).
    device: where the queue and weights live (the learner's TF server's
      CPU, or this process's for threads).
    suffix: appended to the shared resources' names (several in-process
      runs may share one TF context).
    strategy: a `tf.distribute` strategy (default the learner's).
    seed: the run's seed, which draws the network's first weights.
  """
  from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import channels as channels_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import weights as weights_runtime  # pylint: disable=g-import-not-at-top
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec, strategy=strategy,
                                seed=seed)
  channels = channels_lib.host(
      exp, weights_runtime.num_elements(learner.variables), queue_capacity,
      device, suffix=suffix, start_below=actor_start_below)
  return learner, channels
