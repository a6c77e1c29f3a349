"""The run record: the part of the learner's loop that writes config.json at
the start and result.json at the end (`run_dir.py` has the layout)."""

import os

from impala_tf.config import errors
from impala_tf.records import run_dir
from impala_tf.learner_loop import base


class RunRecord(base.LoopPart):
  """At start: refuses a run directory whose saved run has another network
  or suite (`run_dir.ResumeMismatchError`), reports the settings a resumed
  run changes, and saves config.json. At the end: result.json, with
  `status` "completed" (the frame budget is spent), "stopped" (asked to
  stop earlier), "diverged" (`errors.DivergenceError`) or "failed"
  (another error ended the run)."""

  def __init__(self, logdir: str):
    self.logdir = logdir

  def start(self, loop):
    changes = run_dir.check_resume(self.logdir, loop.experiment)
    if changes:
      loop.log(f"Resuming {self.logdir} with changed settings: "
               + "; ".join(changes) + ".")
    run_dir.save_config(self.logdir, loop.experiment)

  def end(self, loop):
    if isinstance(loop.error, errors.DivergenceError):
      status = "diverged"
    elif loop.error is not None:
      status = "failed"
    elif loop.num_frames >= loop.experiment.config.total_frames:
      status = "completed"
    else:
      status = "stopped"
    result = loop.result()
    record = dict(vars(result), mean_return=result.mean_return,
                  status=status)
    if loop.error is not None:
      record["error"] = f"{type(loop.error).__name__}: {loop.error}"
    run_dir.write_json(os.path.join(self.logdir, run_dir.RESULT_FILE), record)
