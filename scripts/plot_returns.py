"""Plots the mean episode return of a run against frames, as a PNG.

Reads the TensorBoard summaries the learner writes (`return/<level>`: the
mean of the last 100 episodes of each level, logged with every progress
line) from one or more run directories.

  python scripts/plot_returns.py RUN_DIR [RUN_DIR ...] --out curve.png \
      [--labels "a,b"] [--title "Pong"]

Needs matplotlib (`pip install -e '.[plot]'`).
"""

import argparse
import glob
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # pylint: disable=g-import-not-at-top
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import tensorflow as tf
from tensorflow.core.util import event_pb2


def read_returns(run_dir):
  """{level: [(frames, mean return), ...]} from a run's event files."""
  curves = {}
  for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.tag.startswith("return/"):
          curves.setdefault(value.tag[len("return/"):], []).append(
              (event.step, tf.make_ndarray(value.tensor).item()))
  return {level: sorted(points) for level, points in curves.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+")
  parser.add_argument("--out", required=True)
  parser.add_argument("--labels", default=None)
  parser.add_argument("--title", default=None)
  args = parser.parse_args()
  labels = args.labels.split(",") if args.labels else args.runs
  if len(labels) != len(args.runs):
    parser.error(f"--labels has {len(labels)} names for {len(args.runs)} runs")
  fig, ax = plt.subplots(figsize=(7, 4))
  for run, label in zip(args.runs, labels):
    curves = read_returns(run)
    if not curves:
      parser.error(f"no return/<level> summaries under {run}")
    for level, points in curves.items():
      frames, returns = zip(*points)
      name = label if len(curves) == 1 else f"{label}: {level}"
      ax.plot([f / 1e6 for f in frames], returns, label=name)
  ax.set_xlabel("environment frames (millions)")
  ax.set_ylabel("mean return, last 100 episodes")
  if args.title:
    ax.set_title(args.title)
  ax.grid(alpha=0.3)
  ax.legend(loc="upper left")
  fig.tight_layout()
  fig.savefig(args.out, dpi=100)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
