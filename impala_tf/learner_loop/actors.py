"""Actor health: the part of the learner's loop that shows what the local
launcher's supervisor reports about actor restarts (`runtime/processes.py`
writes it to `actors.json` in the run directory)."""

import json
import os

from impala_tf.records import run_dir
from impala_tf.learner_loop import base


class ActorHealth(base.LoopPart):
  """Every tick, if the supervisor's status changed: the `actor_restarts`
  counter (progress line, TensorBoard) and the "actors" status text of the
  heartbeat line (who is restarting, and the last error)."""

  def __init__(self, logdir: str):
    self.path = os.path.join(logdir, run_dir.ACTORS_STATUS_FILE)
    self._seen = None

  def tick(self, loop, now):
    try:
      stamp = os.stat(self.path).st_mtime_ns
    except OSError:
      return  # No supervisor (cluster mode), or no restart yet.
    if stamp == self._seen:
      return
    self._seen = stamp
    try:
      with open(self.path) as f:
        status = json.load(f)
    except (OSError, json.JSONDecodeError):
      return  # Replaced while we read: the next tick reads the new one.
    loop.counters["actor_restarts"] = int(status.get("restarts", 0))
    restarting = status.get("restarting", [])
    loop.status["actors"] = (
        f"{len(restarting)} actor(s) restarting ({', '.join(restarting)}), "
        f"last error: {status.get('last_error', '')}" if restarting else
        f"last actor error: {status.get('last_error', '')}")
