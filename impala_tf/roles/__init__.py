"""The roles a process of a run plays, each in its own module.

`run(plan, argv)` prepares the run directory (checked, the earlier run's
network compared, locked) and hands the plan (`impala_tf.config.plan.RunPlan`) to
its role:

* `local`: the learner and actors as processes on this machine, supervised;
* `threads`: the learner and actors as threads of this process;
* `learner`: the learner process (local mode's child, or a cluster role);
* `actor`: an actor process;
* `inference`: central inference's server process (`impala_tf.inference`);
* `anakin`: no actors; environments written in TensorFlow stepped inside
  the learner's compiled program (`impala_tf.anakin`).

The learner is wired to its channels in one place for the learner process
and threads mode (`wiring`). A new run mode is a new role here.
"""

from __future__ import annotations

from typing import Sequence

from impala_tf.config import plan as plan_lib


def run(plan: plan_lib.RunPlan, argv: Sequence[str]) -> int:
  """Runs this process's role of `plan`; `argv` is the command line (local
  mode starts its children with it). Returns the exit code."""
  # pylint: disable=g-import-not-at-top
  if plan.role == "actor":
    from impala_tf.roles import actor
    actor.run(plan)
    return 0
  if plan.role == "inference":
    from impala_tf.roles import inference
    inference.run(plan)
    return 0
  lock = _prepare_run_directory(plan)
  try:
    if plan.role == "learner":
      from impala_tf.roles import learner
      learner.run(plan)
      return 0
    if plan.role == "local":
      from impala_tf.roles import local
      return local.run(plan, argv)
    if plan.role == "anakin":
      from impala_tf.roles import anakin
      anakin.run(plan)
      return 0
    from impala_tf.roles import threads
    threads.run(plan)
    return 0
  finally:
    if lock is not None:
      lock.release()


def _prepare_run_directory(plan: plan_lib.RunPlan):
  """Checks the run directory and takes its lock (None without one).
  Everything is checked before anything starts."""
  if not plan.logdir:
    return None
  from impala_tf.records import run_lock  # pylint: disable=g-import-not-at-top
  from impala_tf.roles import common  # pylint: disable=g-import-not-at-top
  plan_lib.check_run_directory(plan.logdir)
  plan_lib.check_resume(plan)
  try:
    return run_lock.RunLock(plan.logdir).acquire(force=plan.force_unlock,
                                                 log=common.log)
  except run_lock.RunDirectoryBusyError as e:
    raise plan_lib.PlanError(str(e)) from None
