"""Anakin mode: no actors; the environments, written in TensorFlow, are
stepped inside the learner's compiled program (`impala_tf.anakin`)."""

from __future__ import annotations

import threading

from impala_tf.config import plan as plan_lib
from impala_tf.roles import common


def run(plan: plan_lib.RunPlan) -> None:
  """Runs `plan` (role "anakin") until the frame budget is spent or
  SIGTERM/SIGINT stops it."""
  common.log(f"Anakin mode on {common.configure_cpu(plan, 'anakin')}.")
  from impala_tf import anakin  # pylint: disable=g-import-not-at-top
  for note in plan.notes:
    common.log(note)
  stop = threading.Event()
  common.stop_on_signals(stop)
  options = plan.anakin
  try:
    names = anakin.devices(options.replicas)
  except ValueError as e:
    raise plan_lib.PlanError(str(e)) from None
  anakin.run(plan.experiment, names, iterations=options.iterations,
             xla=options.xla, logdir=plan.logdir, seed=plan.seed,
             log_interval_s=plan.loop.log_interval_s,
             checkpoint_interval_s=plan.loop.checkpoint_interval_s,
             stop=stop, log=common.log,
             max_nonfinite_updates=plan.loop.max_nonfinite_updates)
