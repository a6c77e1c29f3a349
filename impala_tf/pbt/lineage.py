"""The population's learning curves and the best member's lineage.

As in the paper's figures, the best member's curve is traced back through
the members it copied: from its last copy onward it is its own curve;
before that, the curve of the member it copied, up to the frames at which
that member's copied checkpoint was written; and so on back to a member
that copied no one. Each piece is drawn after the frames of the pieces
before it, so the traced curve's x-axis counts the frames of experience
behind the weights; the members' own curves use their own frames.
"""

import io

import math
import os
import re
from typing import Optional

from impala_tf.records import curves as curves_lib
from impala_tf.pbt import store

_MEMBER_DIR = re.compile(r"member-(\d+)$")


def member_curves(pbt_dir: str) -> dict[int, tuple[str, list]]:
  """member → (what is plotted, [(frames, value)]) for every member whose
  run has written a progress summary."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  curves = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(pbt_dir, "member-*"))):
    match = _MEMBER_DIR.search(path.rstrip("/"))
    if not match:
      continue
    try:
      curves[int(match.group(1))] = curves_lib.curve(path)
    except ValueError:
      continue  # Not started, or no progress line yet.
  return curves


def trace(events: list[dict], member: int,
          end_frames: float = math.inf) -> list[tuple[int, float, float]]:
  """[(member, from_frames, to_frames), ...], oldest first: whose curve
  the weights of `member` at `end_frames` come from, piece by piece.

  A member writes the checkpoint others copy before it copies anyone at
  the same ready step, so a copy made at exactly `end_frames` came after
  the weights traced: only earlier copies count.
  """
  segments = []
  for _ in range(len(events) + 1):  # Each step goes back one copy.
    copies = [e for e in events if e["member"] == member and e["copied"]
              and e["frames"] < end_frames]
    if not copies:
      segments.append((member, 0, end_frames))
      break
    last = max(copies, key=lambda e: e["frames"])
    segments.append((member, last["frames"], end_frames))
    member = last["source"]
    end_frames = (last["source_frames"] if last.get("source_frames")
                  is not None else last["frames"])
  return segments[::-1]


def best_member(curves: dict[int, tuple[str, list]]) -> Optional[int]:
  """The member whose curve ends highest."""
  finals = {m: points[-1][1] for m, (_, points) in curves.items() if points}
  return max(finals, key=finals.get) if finals else None


def plot(pbt_dir: str, output: Optional[str] = None) -> str:
  """Draws every member, the best member's traced curve and each member's
  learning rate at its ready steps into `output` (default
  DIR/lineage.png); returns the path."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  output = output or os.path.join(pbt_dir, "lineage.png")
  curves = member_curves(pbt_dir)
  if not curves:
    raise ValueError(f"No member of {pbt_dir} has written a progress "
                     "summary yet.")
  events = store.read_events(pbt_dir)
  best = best_member(curves)
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                    gridspec_kw={"height_ratios": [2, 1]})
  for member, (_, points) in sorted(curves.items()):
    frames, values = zip(*points)
    top.plot([f / 1e6 for f in frames], values, alpha=0.35, linewidth=1,
             label=f"member {member}")
  traced, offset = [], 0
  for member, start, end in trace(events, best):
    points = curves.get(member, ("", []))[1]
    piece = [p for p in points if start <= p[0] <= end]
    traced.extend((offset + f - start, v) for f, v in piece)
    if math.isfinite(end):
      offset += end - start
  if traced:
    frames, values = zip(*traced)
    top.plot([f / 1e6 for f in frames], values, color="black", linewidth=2,
             label=f"best (member {best}) traced through its ancestors")
  for event in events:
    if event["copied"] and event["member"] in curves:
      top.axvline(event["frames"] / 1e6, color="grey", linewidth=0.5,
                  linestyle=":")
  top.set_ylabel(next(iter(curves.values()))[0])
  top.grid(alpha=0.3)
  top.legend(loc="best", fontsize="small")
  top.set_title(f"Population {os.path.basename(pbt_dir.rstrip('/'))}: "
                f"{sum(e['copied'] for e in events)} copies in "
                f"{len(events)} ready steps")
  for member in sorted({e["member"] for e in events}):
    mine = [e for e in events if e["member"] == member]
    bottom.step([e["frames"] / 1e6 for e in mine],
                [e["hyperparameters_after"]["learning_rate"] for e in mine],
                where="post", label=f"member {member}")
  bottom.set_yscale("log")
  bottom.set_ylabel("learning rate")
  bottom.set_xlabel("environment frames (millions)")
  bottom.grid(alpha=0.3)
  fig.tight_layout()
  # Through tf.io.gfile: the population's directory may be gs://.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100)
  plt.close(fig)
  with tf.io.gfile.GFile(output, "wb") as f:
    f.write(buffer.getvalue())
  return output
