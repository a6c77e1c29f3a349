"""How many actors the learner hears from: the part of the learner's loop
that counts the actors whose trajectories it trains on.

On a cluster actors come and go (one is killed, another joins later, all
wait while the learner restarts), and no supervisor tells the learner about
them: the trajectories themselves do. Every trajectory carries the index of
the actor that made it (`actor_id`); an actor counts while it has been
heard from recently.

"Recently" is within `window_s`, or three of the actor's own usual gaps
between trajectories if it is slower than that (a DMLab actor stepping 100
steps per unroll, or one of many actors sharing a slow learner's batches,
appears rarely but regularly; such an actor is reported silent once, at
its first gap, until its pace is known). The learner sees a trajectory when it
trains on it, after it waited in the queue; so a killed actor stays
counted until its queued trajectories are used and the window passes.
"""

import numpy as np

from impala_tf.learner_loop import base

MIN_WINDOW_S = 10.0
GAPS_PER_WINDOW = 3
_GAP_SMOOTHING = 0.2  # Weight of the newest gap in an actor's mean gap.
_MAX_GAP_WINDOWS = 6  # Gaps count up to this many windows.


class ActorCount(base.LoopPart):
  """Counts the actors heard from (module docstring).

  Publishes the count as `loop.counters["actors"]` (the progress line's
  "actors N", TensorBoard's `counters/actors`), its ids as
  `loop.status["actor_count"]` (heartbeat lines), and logs one line per tick
  in which actors joined or fell silent.

  Args:
    window_s: how long an actor counts after its last trajectory (at
      least; slower actors get three of their usual gaps).
  """

  def __init__(self, window_s: float = MIN_WINDOW_S):
    if not window_s > 0:
      raise ValueError(f"window_s must be positive, got {window_s}")
    self.window_s = float(window_s)
    self._last_seen: dict[int, float] = {}  # actor id → time
    self._mean_gap: dict[int, float] = {}   # actor id → seconds
    self._counted: set[int] = set()
    self._pending: set[int] = set()          # Seen since the last tick.

  @classmethod
  def for_interval(cls, log_interval_s: float) -> "ActorCount":
    """The window for a loop that reports every `log_interval_s`: three
    progress lines, and at least `MIN_WINDOW_S`."""
    return cls(max(MIN_WINDOW_S, GAPS_PER_WINDOW * log_interval_s))

  def after_update(self, loop, update):
    del loop
    fresh = ~np.asarray(update.replayed)  # Replayed ones are old news.
    for actor in np.unique(update.batch["actor_id"].numpy()[fresh]):
      self._pending.add(int(actor))

  def tick(self, loop, now):
    for actor in self._pending:
      last = self._last_seen.get(actor)
      if last is not None:
        # An actor back after a long absence (killed, then replaced) must
        # not count for ages if it goes again: gaps are capped.
        gap = min(now - last, _MAX_GAP_WINDOWS * self.window_s)
        mean = self._mean_gap.get(actor, gap)
        self._mean_gap[actor] = mean + _GAP_SMOOTHING * (gap - mean)
      self._last_seen[actor] = now
    self._pending.clear()
    heard = {actor for actor, last in self._last_seen.items()
             if now - last <= self.window_for(actor)}
    joined, gone = sorted(heard - self._counted), sorted(self._counted - heard)
    self._counted = heard
    loop.counters["actors"] = len(heard)
    loop.status["actor_count"] = (
        f"{len(heard)} actor(s) heard from ({_ids(heard)})" if heard else
        f"no actor heard from in the last {self.window_s:g} s (before: "
        f"{_ids(self._last_seen)})" if self._last_seen else
        "no actor heard from yet")
    if joined or gone:
      changes = []
      if joined:
        changes.append(f"joined: {_ids(joined)}")
      if gone:
        changes.append(f"fell silent: {_ids(gone)}")
      loop.log(f"Actors {'; '.join(changes)}; hearing from {len(heard)} "
               "actor(s).")

  def window_for(self, actor: int) -> float:
    """Seconds `actor` counts after its last trajectory."""
    return max(self.window_s,
               GAPS_PER_WINDOW * self._mean_gap.get(actor, 0.0))


def _ids(actors) -> str:
  """Actor ids as "0-3, 7, 8" (sorted; runs of three or more joined)."""
  ids = sorted(actors)
  runs, start = [], None
  for i, actor in enumerate(ids):
    if start is None:
      start = actor
    if i + 1 == len(ids) or ids[i + 1] != actor + 1:
      if actor - start >= 2:
        runs.append(f"{start}-{actor}")
      else:
        runs.extend(str(a) for a in range(start, actor + 1))
      start = None
  return ", ".join(runs)
