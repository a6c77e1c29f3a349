"""Policy export: the part of the learner's loop that writes the SavedModel
(`impala_tf.records.saved_policy`) when the run ends, unless it ended with an error."""

from impala_tf.records import saved_policy
from impala_tf.learner_loop import base


class PolicyExporter(base.LoopPart):
  """Exports the policy to `output_dir` at the end of a run."""

  def __init__(self, output_dir: str):
    self.output_dir = output_dir

  def end(self, loop):
    if loop.error is not None:
      return
    saved_policy.export_policy(loop.experiment, loop.learner.variables,
                         loop.num_frames, self.output_dir)
    loop.log(f"Exported the policy to {self.output_dir}.")
