"""The central inference server's process (`--inference=central`,
`--inference_server=process`): on the learner's host, next to its TF
server. It reads the learner's published weights over TF's runtime, as an
actor does, serves the actors' requests on --inference_port, and ends when
the learner closes its queue (or, in local mode, with the learner).

A process of its own, not a thread of the learner: on a CPU its TF ops
then run on threads of their own instead of queueing behind the learner's
update in the learner's thread pools (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import sys
import threading

from impala_tf.config import plan as plan_lib
from impala_tf.roles import actor as actor_role
from impala_tf.roles import common
from impala_tf.runtime import tf_startup

# The shortest time between two looks at the learner's publication (each a
# round trip to the learner): [ours] a few ms of weights' age against
# updates a few hundred ms apart.
REFRESH_INTERVAL_S = 0.02


def run(plan: plan_lib.RunPlan) -> None:
  """Connects to the learner, serves until its queue closes."""
  cpu_line = common.configure_cpu(plan, "actor")
  tf = tf_startup.import_tensorflow()
  # As an actor's: one TF thread costs the least CPU per frame where the
  # learner, the actors and this share a few cores (--actor_threads).
  tf.config.threading.set_intra_op_parallelism_threads(plan.actor_threads)
  tf.config.threading.set_inter_op_parallelism_threads(plan.actor_threads)
  # pylint: disable=g-import-not-at-top
  from impala_tf.inference import server as inference_server
  from impala_tf.inference import transport
  from impala_tf.runtime import channels as channels_lib
  from impala_tf.runtime import server as server_lib
  from impala_tf.runtime import weights as weights_runtime
  # pylint: enable=g-import-not-at-top
  options, address = plan.inference, plan.learner_address
  if not options.port:
    raise plan_lib.PlanError("The inference server needs --inference_port.")
  stop = threading.Event()
  common.stop_on_signals(stop)
  server = None
  try:
    device = server_lib.connect_to_learner(
        address, timeout_s=plan.connect_timeout_s, quiet_s=15.0,
        log=lambda m: common.log(f"Inference: {m}"))
    with tf.device(options.device or server_lib.LOCAL_CPU):
      server = inference_server.InferenceServer.from_options(
          plan.experiment, None, options, log=common.log,
          refresh_interval_s=REFRESH_INTERVAL_S)
    channels = channels_lib.attach(
        plan.experiment,
        weights_runtime.num_elements(server.network.trainable_variables),
        device, timeout_s=plan.connect_timeout_s)
    server.weights = channels.weights
    server.start()
    frontend = transport.SocketFrontend(server, options.port, log=common.log)
    common.log(f"Inference: serving on port {options.port} for the learner "
               f"at {address}: {server.describe()} ({cpu_line}).")
    report = inference_server.InferenceReport(server, who="Inference")
    while not stop.wait(1.0):
      report.tick(None, 0.0)
      if server.error is not None or channels.queue.is_closed():
        break
    frontend.close()
    server.stop()
    report.end(None)
  except (tf.errors.OpError, TypeError) as e:
    if not server_lib.is_learner_lost(e):
      raise
    if not os.environ.get(actor_role.LOCAL_RUN_ENV):
      # A cluster's supervisor starts it again for the next learner.
      raise server_lib.LearnerLostError(
          f"Inference: lost the learner at {address}; stopping.") from None
    common.log("Inference: the learner ended; stopping.")
  if server is not None and server.error is not None:
    sys.exit(1)
