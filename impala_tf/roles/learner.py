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
      exp, plan.queue_capacity, plan.actor_start_below, server.device,
      seed=plan.seed)
  stop = threading.Event()
  common.stop_on_signals(stop)
  parts = common.extra_parts(plan)
  # Central inference in this process (--inference_server=learner); with
  # a process of its own, local mode or the cluster starts that.
  inference = (_start_inference(plan, channels)
               if plan.inference.central and plan.inference.server ==
               "learner" else None)
  if inference is not None:
    parts.append(inference[2])
  try:
    learner_loop.run_learner(
        exp, learner, channels, queue_capacity=plan.queue_capacity,
        logdir=plan.logdir, log_interval_s=plan.loop.log_interval_s,
        checkpoint_interval_s=plan.loop.checkpoint_interval_s, stop=stop,
        log=common.log,
        max_nonfinite_updates=plan.loop.max_nonfinite_updates,
        extra_parts=parts)
  finally:
    if inference is not None:
      inference[1].close()
      inference[0].stop()


def _start_inference(plan: plan_lib.RunPlan, channels):
  """(server, socket front end, loop part) of central inference: the
  server next to the learner's TF server, on --inference_port."""
  from impala_tf.inference import server as inference_server  # pylint: disable=g-import-not-at-top
  from impala_tf.inference import transport  # pylint: disable=g-import-not-at-top
  options = plan.inference
  if not options.port:
    raise plan_lib.PlanError("Central inference needs --inference_port (or "
                             "--port, which it follows by one).")
  server = inference_server.InferenceServer.from_options(
      plan.experiment, channels.weights, options, log=common.log).start()
  frontend = transport.SocketFrontend(server, options.port, log=common.log)
  common.log(f"Learner: central inference on port {options.port}: "
             f"{server.describe()}.")
  return server, frontend, inference_server.InferenceReport(server)


def _what(exp) -> str:
  """The suite and its levels, each name once ("catch", not "catch
  catch")."""
  if exp.levels == (exp.suite,):
    return exp.suite
  return f"{exp.suite} {','.join(exp.levels)}"
