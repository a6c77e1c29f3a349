r"""Learning curves of one or several runs, as a PNG: `python -m impala_tf.plot`.

  python -m impala_tf.plot RUN [RUN ...] --output=curves.png [--labels=a,b]
  python -m impala_tf.plot --pbt DIR [--output=DIR/lineage.png]

One curve per run, read from the TensorBoard summaries its learner wrote
with every progress line: the mean return of the last 100 episodes for a
run on a single level (`return/<level>`), the mean human-normalised score
in percent for a run on several levels of a suite with reference scores
(`score/mean`), against environment frames. With `--pbt DIR`, a population
(impala_tf/pbt): every member, the best member traced back through the
members it copied, and each member's learning rate (pbt/lineage.py).
"""

import os
from typing import Optional, Sequence

from absl import app
from absl import flags


def read_scalars(run: str) -> dict[str, list[tuple[int, float]]]:
  """tag → [(frames, value), ...] from the event files of `run`, sorted."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.util import event_pb2  # pylint: disable=g-import-not-at-top
  series: dict[str, list[tuple[int, float]]] = {}
  paths = sorted(tf.io.gfile.glob(os.path.join(run, "events.out.tfevents.*")))
  for path in paths:
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.HasField("tensor") and not value.tensor.tensor_shape.dim:
          series.setdefault(value.tag, []).append(
              (event.step, float(tf.make_ndarray(value.tensor))))
  return {tag: sorted(points) for tag, points in series.items()}


def curve(run: str) -> tuple[str, list[tuple[int, float]]]:
  """(what is plotted, points) for one run (see the module docstring)."""
  scalars = read_scalars(run)
  returns = sorted(tag for tag in scalars if tag.startswith("return/"))
  if len(returns) == 1:
    return "mean return, last 100 episodes", scalars[returns[0]]
  if "score/mean" in scalars:
    return "mean human-normalised score (%)", scalars["score/mean"]
  if returns:
    raise ValueError(f"{run} trains on {len(returns)} levels without "
                     "reference scores, so there is no single curve to draw.")
  raise ValueError(f"{run} has no return/ or score/ summaries (is it a run "
                   "directory, and has it printed a progress line yet?).")


def plot(runs: Sequence[str], output: str,
         labels: Optional[Sequence[str]] = None,
         title: Optional[str] = None) -> tuple[str, int]:
  """Draws one curve per run into `output` (PNG); returns the path and the
  number of curves drawn."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  labels = list(labels) if labels else list(runs)
  if len(labels) != len(runs):
    raise ValueError(f"{len(labels)} labels for {len(runs)} runs.")
  curves = [curve(run) for run in runs]
  kinds = {kind for kind, _ in curves}
  if len(kinds) > 1:
    raise ValueError("The runs plot different quantities "
                     f"({', '.join(sorted(kinds))}); plot them separately.")
  fig, ax = plt.subplots(figsize=(7, 4))
  for label, (_, points) in zip(labels, curves):
    frames, values = zip(*points)
    ax.plot([f / 1e6 for f in frames], values, label=label)
  ax.set_xlabel("environment frames (millions)")
  ax.set_ylabel(kinds.pop())
  if title:
    ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc="best")
  fig.tight_layout()
  fig.savefig(output, dpi=100)
  drawn = len(ax.lines)
  plt.close(fig)
  return output, drawn


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
  from impala_tf import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf import tf_startup  # pylint: disable=g-import-not-at-top
  cpu.configure_onednn("auto", "learner")
  tf_startup.set_log_level()
  tf_startup.import_tensorflow()
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
    plot(runs, output, FLAGS.labels or None, FLAGS.title)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  print(f"Wrote {output} ({len(runs)} curve(s)).")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
