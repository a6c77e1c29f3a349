"""An actor process: connects to its learner, acts until the learner's
queue closes, and waits for a learner that went away.

When the learner goes away the actor waits for it (`wait_for_learner`) and
comes back here in a fresh process image with the same pid: the outage's
start travels in `OUTAGE_ENV`, and the connection gets what is left of
--learner_wait_s.
"""

from __future__ import annotations

import os
import sys
import time

from impala_tf.config import plan as plan_lib
from impala_tf.runtime import tf_startup
from impala_tf.roles import common

# In an actor that lost its learner and re-executed itself to wait for it
# (`wait_for_learner`): when the outage began (seconds since the epoch).
OUTAGE_ENV = "IMPALA_TF_LEARNER_LOST_AT"
# Set by local mode for its children: the learner is the launcher's child
# too, and never comes back once it ended (`roles.local`).
LOCAL_RUN_ENV = "IMPALA_TF_LOCAL_RUN"


def run(plan: plan_lib.RunPlan) -> None:
  """Connects to the learner and acts until its queue closes."""
  cpu_line = common.configure_cpu(plan, "actor")
  tf = tf_startup.import_tensorflow()
  from impala_tf.acting import actor_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  # Before TF's context exists (the connection creates it).
  tf.config.threading.set_intra_op_parallelism_threads(plan.actor_threads)
  tf.config.threading.set_inter_op_parallelism_threads(plan.actor_threads)
  lost_at = outage_start()
  network, channels = _connect(plan, lost_at)
  exp, task, address = plan.experiment, plan.task, plan.learner_address
  levels = sorted({exp.levels[i] for i in exp.level_ids(task)})
  joined = (f"connected to {address}" if lost_at is None else
            f"reconnected to {address} after "
            f"{time.time() - lost_at:.0f} s without it")
  os.environ.pop(OUTAGE_ENV, None)  # A later outage is a new one.
  common.log(f"Actor {task}: {joined}; stepping {exp.envs_per_actor} "
             f"environments ({', '.join(levels)}) on {cpu_line}.")
  try:
    with tf.device(server_lib.LOCAL_CPU):
      if plan.inference.central:
        actor_loop.run_central_actor(
            exp, task, channels.queue, _inference_connection(plan),
            groups=plan.inference.groups, seed=plan.seed, log=common.log)
      else:
        actor_loop.run_actor(exp, task, channels, seed=plan.seed,
                             log=common.log, network=network)
  except server_lib.LearnerLostError as e:
    wait_for_learner(plan, str(e), None)


def _inference_connection(plan: plan_lib.RunPlan):
  """A function that connects to the learner's inference server."""
  from impala_tf.inference import transport  # pylint: disable=g-import-not-at-top
  host = plan.learner_address.rsplit(":", 1)[0]
  address = f"{host}:{plan.inference.port}"
  return lambda: transport.SocketConnection(
      address, timeout_s=plan.connect_timeout_s)


def _connect(plan: plan_lib.RunPlan, lost_at):
  """(network, channels) attached to the learner's queue and weights; a
  learner lost meanwhile is waited for (`wait_for_learner`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from impala_tf.acting import actor_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import channels as channels_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import queue as queue_runtime  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import weights as weights_runtime  # pylint: disable=g-import-not-at-top
  task, address = plan.task, plan.learner_address
  if lost_at is None:
    timeout_s = plan.connect_timeout_s
    say = lambda m: common.log(f"Actor {task}: {m}")
  else:
    # One line per outage: it was said when the learner went away.
    timeout_s = lost_at + plan.learner_wait_s - time.time()
    say = lambda m: None
  try:
    if timeout_s <= 0:
      raise server_lib.LearnerUnreachableError(
          "the wait was over before this process could connect")
    device = server_lib.connect_to_learner(
        address, timeout_s=timeout_s, quiet_s=15.0, log=say)
    if plan.inference.central:
      # The policy runs on the learner's inference server: no network here.
      return None, channels_lib.attach(plan.experiment, None, device,
                                       timeout_s=max(timeout_s, 5.0))
    # Everything but the queue and weight ops runs on this process's CPU.
    with tf.device(server_lib.LOCAL_CPU):
      network = actor_loop.build_actor_network(plan.experiment)
    channels = channels_lib.attach(
        plan.experiment,
        weights_runtime.num_elements(network.trainable_variables), device,
        timeout_s=max(timeout_s, 5.0))
    return network, channels
  except (server_lib.LearnerUnreachableError,
          queue_runtime.QueueNotFoundError) as e:
    if lost_at is None:
      raise
    raise server_lib.LearnerLostError(
        f"Actor {task}: the learner at {address} did not come back within "
        f"--learner_wait_s={plan.learner_wait_s:g} s ({e}); "
        "stopping.") from None
  except (tf.errors.OpError, TypeError) as e:
    # The learner went away while this actor was connecting (TF's names for
    # it: `server_lib.is_learner_lost`); during a reconnection, the same
    # outage goes on.
    if not server_lib.is_learner_lost(e):
      raise
    first = (getattr(e, "message", None) or str(e)).strip().splitlines()
    wait_for_learner(
        plan, f"Actor {task} lost the learner while connecting "
        f"({first[0] if first else type(e).__name__})", lost_at)


def outage_start():
  """When this actor's learner went away, if this process image was
  started to wait for it (`wait_for_learner`); else None."""
  raw = os.environ.get(OUTAGE_ENV)
  if raw is None:
    return None
  try:
    return float(raw)
  except ValueError:
    raise plan_lib.PlanError(
        f"{OUTAGE_ENV} (set by an actor for its next process image) must be "
        f"a time in seconds, got {raw!r}; unset it.") from None


def wait_for_learner(plan: plan_lib.RunPlan, loss: str, lost_at):
  """Waits for a learner that went away: re-executes this process (same
  pid, same command line and environment) to reconnect, or with
  --learner_wait_s=0 raises `LearnerLostError` (exit code 1). In local
  mode it stops at once (exit code 0): the launcher ends the run with its
  learner.

  Why a new process image: TF's remote eager context cannot be pointed at a
  restarted server in-process (its ops keep failing on the old
  connection), and a restart by a supervisor would lose the pid and need
  one. `loss` says how the learner was lost (said once, for a new outage);
  `lost_at` is when an ongoing outage began (None: a new one).
  """
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  if os.environ.get(LOCAL_RUN_ENV):
    # Local mode: the launcher ends the run with its learner (on purpose
    # or not) and says why; no learner comes back to wait for.
    common.log(f"Actor {plan.task}: the learner ended; stopping.")
    sys.exit(0)
  if plan.learner_wait_s <= 0:
    raise server_lib.LearnerLostError(f"{loss}; stopping.")
  if lost_at is None:
    lost_at = time.time()
    common.log(f"{loss}; waiting up to {plan.learner_wait_s:g} s for it to "
               f"come back at {plan.learner_address}.")
  os.environ[OUTAGE_ENV] = repr(lost_at)
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(sys.executable, sys.orig_argv)
