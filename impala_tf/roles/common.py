"""What the roles share: the log, the CPU set-up, signals, the run's end."""

from __future__ import annotations

import signal
import threading

from impala_tf.config import plan as plan_lib
from impala_tf.runtime import tf_startup


def log(message: str):
  print(message, flush=True)


def stop_on_signals(stop: threading.Event):
  """SIGTERM (the supervisor, a cluster manager) and SIGINT (Ctrl-C) end
  the run cleanly: the current update finishes, a checkpoint is saved and
  the queue closed, instead of dying mid-write."""
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: stop.set())


def configure_cpu(plan: plan_lib.RunPlan, role: str) -> str:
  """Decides oneDNN for this process before TF starts; returns the words
  for the start-up line (what runs where, and why)."""
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  torso = plan.experiment.config.torso
  info = cpu.read_cpu_info()
  # Anakin mode's one process learns (and acts): the learner's rule.
  choice = cpu.configure_onednn(
      plan.onednn, "learner" if role == "anakin" else role, torso, info)
  tf_startup.import_tensorflow(without_keras=True)
  here = "on" if cpu.tf_onednn_enabled() else "off"
  if role in ("actor", "anakin"):
    return f"{info.describe()}; onednn {here} ({choice.source})"
  if choice.source == "user":
    actors = f"{'on' if choice.enabled else 'off'} (user)"
  elif plan.onednn == "auto":
    actors = ("on" if cpu.auto_onednn("actor", torso, info)
              else "off") + " (auto) on this CPU"
  else:
    actors = f"{plan.onednn} (flag)"
  return (f"{info.describe()}; onednn {here} in the learner "
          f"({choice.source}), {actors} in actors")


def extra_parts(plan: plan_lib.RunPlan) -> list:
  """The learner-loop parts this run adds to the standard ones: a
  population member's with --pbt_dir."""
  if plan.pbt is None:
    return []
  from impala_tf.pbt import member as member_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.pbt import rules  # pylint: disable=g-import-not-at-top
  pbt = plan.pbt
  return [member_lib.PopulationMember(
      pbt.pbt_dir, pbt.member, plan.logdir,
      rules.Rules(burn_in_frames=pbt.burn_in_frames,
                  ready_episodes=pbt.ready_episodes,
                  exploit_threshold=pbt.exploit_threshold,
                  anneal=pbt.anneal),
      seed=plan.seed, initial=pbt.initial)]


def mark_failed(logdir: str, message: str):
  """Records in result.json that the run failed, and why."""
  import os  # pylint: disable=g-import-not-at-top
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  path = os.path.join(logdir, run_dir.RESULT_FILE)
  record = run_dir.read_json(path) or {}
  record.update(status="failed", error=message)
  run_dir.write_json(path, record)
