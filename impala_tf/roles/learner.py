"""The learner process: its TF server, the learner wired to the queue and
weights it hosts, and the learner's loop until the run ends."""

from __future__ import annotations

import threading

from impala_tf.config import plan as plan_lib
from impala_tf.roles import common
from impala_tf.roles import wiring


def run(plan: plan_lib.RunPlan) -> None:
  """Runs the learner of `plan` (role "learner") until the frame budget is
  spent or SIGTERM/SIGINT stops it."""
  exp = plan.experiment
  cpu_line = common.configure_cpu(plan, "learner")
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf import learner_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  common.log(f"Learner on {cpu_line}.")
  for note in plan.notes:
    common.log(note)
  note = cpu.precision_note(exp.config.precision, cpu.read_cpu_info())
  if note:
    common.log(f"Precision {exp.config.precision}: {note}")
  server = server_lib.LearnerServer.start(plan.port)
  common.log(
      f"Learner: TF server on port {plan.port}; {_what(exp)}; "
      f"{exp.config.torso} network; batch "
      f"{exp.config.batch_size}, unroll {exp.config.unroll_length}; queue "
      f"capacity {plan.queue_capacity}, actors start below "
      f"{plan.actor_start_below}; {exp.config.total_frames:,} frames.")
  learner, channels = wiring.wire_learner(
      exp, plan.queue_capacity, plan.actor_start_below, server.device)
  stop = threading.Event()
  common.stop_on_signals(stop)
  learner_loop.run_learner(
      exp, learner, channels, queue_capacity=plan.queue_capacity,
      logdir=plan.logdir, log_interval_s=plan.loop.log_interval_s,
      checkpoint_interval_s=plan.loop.checkpoint_interval_s, stop=stop,
      log=common.log, max_nonfinite_updates=plan.loop.max_nonfinite_updates,
      extra_parts=common.extra_parts(plan))


def _what(exp) -> str:
  """The suite and its levels, each name once ("catch", not "catch
  catch")."""
  if exp.levels == (exp.suite,):
    return exp.suite
  return f"{exp.suite} {','.join(exp.levels)}"
