r"""Exports a trained policy as a SavedModel: `python -m impala_tf.export`.

  python -m impala_tf.export --logdir=RUN [--output=DIR]

reads the run's config and its newest readable checkpoint and writes the
policy to DIR (default RUN/saved_model). Every run also exports itself when
it ends. The SavedModel, its signatures and their inputs are described in
`impala_tf/records/saved_policy.py`; it needs nothing of this project to load and
run.
"""

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def _define_flags():
  """The command line's flags (defined only when run as a program, so
  importing this module defines none)."""
  flags.DEFINE_string("logdir", None, "The run directory to export.")
  flags.DEFINE_string("output", None, "Where to write the SavedModel; default "
                      "LOGDIR/saved_model.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}.")
  if not FLAGS.logdir:
    raise app.UsageError("--logdir=RUN is required.")
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  # TF's CPU kernels are decided before TF is imported, as for a learner
  # (an export computes nothing that the choice slows).
  cpu.configure_onednn("auto", "learner")
  from impala_tf.records import saved_policy  # pylint: disable=g-import-not-at-top
  saved_policy.export_run(FLAGS.logdir, FLAGS.output)


if __name__ == "__main__":
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  cli.run("export", main, define_flags=_define_flags)
