r"""Learning curves of one or several runs, as a PNG: `python -m impala_tf.plot`.

  python -m impala_tf.plot RUN [RUN ...] --output=curves.png [--labels=a,b]
  python -m impala_tf.plot --pbt DIR [--output=DIR/lineage.png]

One curve per run, read from the TensorBoard summaries its learner wrote
with every progress line: the mean return of the last 100 episodes for a
run on a single level (`return/<level>`), the mean human-normalised score
in percent for a run on several levels of a suite with reference scores
(`score/mean`), against environment frames (`impala_tf/records/curves.py`). With
`--pbt DIR`, a population
(impala_tf/pbt): every member, the best member traced back through the
members it copied, and each member's learning rate (pbt/lineage.py).
"""

from absl import app
from absl import flags


FLAGS = flags.FLAGS


def _define_flags():
  """The command line's flags (defined only when run as a program, so
  importing this module defines none)."""
  flags.DEFINE_string("output", None, "The PNG to write (default curves.png,"
                      " or DIR/lineage.png with --pbt).")
  flags.DEFINE_string("pbt", None, "A population's directory: draw its "
                      "lineage plot instead of run curves.")
  flags.DEFINE_list("labels", [], "One label per run; default the paths.")
  flags.DEFINE_string("title", None, "A title for the plot.")


def main(argv):
  runs = argv[1:]
  if FLAGS.pbt and runs:
    raise app.UsageError("Give either run directories or --pbt DIR, not "
                         "both.")
  if not runs and not FLAGS.pbt:
    raise app.UsageError("Give one or more run directories, or --pbt DIR.")
  # TF reads the event files: quiet, its CPU kernels decided first, as in
  # every entry point.
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  cpu.configure_onednn("auto", "learner")
  tf_startup.set_log_level()
  tf_startup.import_tensorflow()
  from impala_tf.records import curves  # pylint: disable=g-import-not-at-top
  if FLAGS.pbt:
    from impala_tf.pbt import lineage  # pylint: disable=g-import-not-at-top
    try:
      path = lineage.plot(FLAGS.pbt, FLAGS.output)
    except ValueError as e:
      raise app.UsageError(str(e)) from None
    print(f"Wrote {path}.")
    return
  output = FLAGS.output or "curves.png"
  try:
    curves.draw(runs, output, FLAGS.labels or None, FLAGS.title)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  print(f"Wrote {output} ({len(runs)} curve(s)).")


if __name__ == "__main__":
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  cli.run("plot", main, define_flags=_define_flags)
