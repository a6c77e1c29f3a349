"""Local mode: the learner and its actors as processes on this machine.

The launcher starts the learner and `num_actors` actors as its children
(the same command with `--job=learner` / `--job=actor`), inside a private
network namespace with only loopback when the machine allows it (a TF
server listens on all interfaces with no authentication), forked from one
process that imported TensorFlow once (`runtime.template`) unless
--fork_children=false, supervises them (`runtime.processes.Supervisor`:
actors that die are restarted) and stops them all on Ctrl-C, SIGTERM or
when the learner ends.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from impala_tf.config import errors
from impala_tf.config import plan as plan_lib
from impala_tf.roles import common

# glibc's malloc gives threads that allocate at once their own arenas (up
# to 8 per core), and TF's thread pools keep memory in each of them.
MALLOC_ARENA_MAX_ENV = "MALLOC_ARENA_MAX"
# [ours] Two arenas per process: the whole run's PSS 60 MiB lower at the
# same speed (docs/benchmarks.md).
MALLOC_ARENAS = "2"

# [ours] How long the learner may take to stop after SIGTERM (Ctrl-C): it
# finishes the update under way (the first one compiles it), saves a
# checkpoint and exports the policy. On a busy 2-core machine that took
# more than the supervisor's default 5 s, and the learner was killed
# before its last checkpoint. Actors keep the default: they only stop
# stepping.
LEARNER_STOP_GRACE_S = 60.0


def run(plan: plan_lib.RunPlan, argv: Sequence[str]) -> int:
  """Runs `plan` (role "local"), whose command line was `argv`; returns
  the launcher's exit code."""
  # Children only: glibc reads it once, when a process starts. A user's
  # setting wins.
  os.environ.setdefault(MALLOC_ARENA_MAX_ENV, MALLOC_ARENAS)
  from impala_tf.runtime import isolation  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import processes  # pylint: disable=g-import-not-at-top
  # The run directory as resolved here (a default one has the time in its
  # name): every child must use the same.
  this = [sys.executable, "-m", "impala_tf.launch",
          *without_flag(argv[1:], "logdir"), f"--logdir={plan.logdir}"]
  if (plan.isolation == "auto" and not isolation.is_isolated() and
      isolation.private_network_available()):
    # The same launch again, inside a network namespace with only loopback.
    supervisor = processes.Supervisor(log=common.log)
    # Longer than the learner's inside, so the inner launcher decides.
    supervisor.start("launcher", isolation.isolated_argv(this),
                     grace_s=LEARNER_STOP_GRACE_S + 10)
    return exit_code(supervisor.run_until("launcher"))
  return _supervise(plan, this)


def _supervise(plan: plan_lib.RunPlan, this: list[str]) -> int:
  """Starts the learner and actors (`this` with their roles), supervises
  them until the learner ends; returns the exit code."""
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import isolation  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import processes  # pylint: disable=g-import-not-at-top
  from impala_tf.roles import actor  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  os.environ[actor.LOCAL_RUN_ENV] = "1"  # For the children.
  template = _start_template(plan)
  supervisor = processes.Supervisor(
      log=common.log,
      status_path=os.path.join(plan.logdir, run_dir.ACTORS_STATUS_FILE),
      template=template)
  try:
    port = server_lib.free_port()
    if not isolation.is_isolated():
      common.log(isolation.exposure_warning(port))
    both = []
    if plan.inference.central:
      # The inference server's port, and a key of this run's own.
      from impala_tf.inference import keys  # pylint: disable=g-import-not-at-top
      both = [f"--inference_port={server_lib.free_port()}"]
      os.environ.setdefault(keys.KEY_ENV, keys.new_key())
    supervisor.start("learner", this + ["--job=learner", f"--port={port}",
                                        *both],
                     grace_s=LEARNER_STOP_GRACE_S, hold_error_line=True)
    if plan.inference.central and plan.inference.server == "process":
      supervisor.start("inference", this + [
          "--job=inference", f"--learner_address=127.0.0.1:{port}", *both],
                       restart=True)
    for task in range(plan.num_actors):
      supervisor.start(f"actor_{task}", this + [
          "--job=actor", f"--task={task}",
          f"--learner_address=127.0.0.1:{port}", *both], restart=True)
    outcome = supervisor.run_until("learner")
  finally:
    supervisor.terminate_all()
    if template is not None:
      template.close()
  if outcome.crash_loop is not None:
    # The learner was stopped like any other way (a last checkpoint of its
    # finite state); the run failed, and this is why.
    message = (f"actors failed {supervisor.crash_loop_count} times in "
               f"{supervisor.crash_loop_window_s / 60:g} min with the same "
               f"error, so the run stopped: {outcome.crash_loop}")
    common.mark_failed(plan.logdir, message)
    raise errors.RunError(message)
  if outcome.returncode:
    # The learner's own reason, as the run's last line: the actors it
    # left said their last words before the supervisor stopped them.
    cause = supervisor.cause("learner")
    raise errors.RunError(f"the learner {cause}" if outcome.returncode < 0
                          else cause)
  return exit_code(outcome)


def _start_template(plan: plan_lib.RunPlan):
  """The process the learner and actors are forked from
  (`--fork_children`, `runtime.template`), or None to start each afresh."""
  if not plan.fork_children:
    return None
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import template as template_lib  # pylint: disable=g-import-not-at-top
  # TF reads its oneDNN setting once, when it loads: forked children share
  # the template's, so the roles must agree on it.
  info = cpu.read_cpu_info()
  torso = plan.experiment.config.torso
  learner = cpu.configure_onednn(plan.onednn, "learner", torso, info)
  actor = cpu.configure_onednn(plan.onednn, "actor", torso, info)
  if learner.enabled != actor.enabled:
    common.log("The learner and actors run with different oneDNN settings, "
               "so each starts afresh (not forked from one TensorFlow "
               "import).")
    return None
  try:
    return template_lib.Template(["impala_tf.runtime.preload"],
                                 label=plan.logdir)
  except template_lib.TemplateError as e:
    common.log(f"Could not start the process the learner and actors are "
               f"forked from ({e}); each starts afresh.")
    return None


def without_flag(args: Sequence[str], name: str) -> list[str]:
  """`args` without `--name=...` / `--name ...` (to give it once, resolved)."""
  kept, skip = [], False
  for arg in args:
    if skip:
      skip = False
    elif arg == f"--{name}":
      skip = True
    elif not arg.startswith(f"--{name}="):
      kept.append(arg)
  return kept


def exit_code(outcome) -> int:
  if outcome.signal is not None:
    return 128 + outcome.signal
  return outcome.returncode or 0
