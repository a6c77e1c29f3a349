"""Learning curves of runs, from the TensorBoard summaries their learners
write with every progress line: the mean return of the last 100 episodes
for a run on a single level (`return/<level>`), the mean human-normalised
score in percent for a run on several levels of a suite with reference
scores (`score/mean`), against environment frames. `python -m
impala_tf.plot` draws them; the ablation runner and the population's
lineage plot read them.
"""

import os
from typing import Optional, Sequence


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


def draw(runs: Sequence[str], output: str,
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
