"""The learner's count of the actors it hears from, on a fake loop and a
fake clock."""

import numpy as np
import tensorflow as tf

from impala_tf.learner_loop import actor_count
from impala_tf.learner_loop import base


class _Loop:
  def __init__(self):
    self.counters, self.status, self.lines = {}, {}, []

  def log(self, line):
    self.lines.append(line)


def _update(actor_ids, replayed=None):
  actor_ids = np.asarray(actor_ids, np.int32)
  if replayed is None:
    replayed = np.zeros(len(actor_ids), bool)
  return base.Update({"actor_id": tf.constant(actor_ids)}, {},
                     np.zeros(0, np.int64), np.asarray(replayed))


def _hear(part, loop, now, actor_ids, replayed=None):
  part.after_update(loop, _update(actor_ids, replayed))
  part.tick(loop, now)


def test_actors_join_fall_silent_and_come_back():
  part, loop = actor_count.ActorCount(window_s=10), _Loop()
  part.tick(loop, 0.0)
  assert loop.counters["actors"] == 0
  assert loop.status["actor_count"] == "no actor heard from yet"
  _hear(part, loop, 1.0, [0, 0, 1, 1])
  _hear(part, loop, 2.0, [2, 3, 5, 5])
  assert loop.counters["actors"] == 5
  assert loop.status["actor_count"] == "5 actor(s) heard from (0-3, 5)"
  assert loop.lines == ["Actors joined: 0, 1; hearing from 2 actor(s).",
                        "Actors joined: 2, 3, 5; hearing from 5 actor(s)."]
  # Actor 1 is killed; the others keep sending.
  for now in np.arange(3.0, 12.0):
    _hear(part, loop, now, [0, 2, 3, 5])
  assert loop.counters["actors"] == 5  # 10 s after its last: still counted.
  _hear(part, loop, 12.0, [0, 2, 3, 5])
  assert loop.counters["actors"] == 4
  assert loop.lines[-1] == "Actors fell silent: 1; hearing from 4 actor(s)."
  # A new actor and the old one's replacement (same index) join together.
  _hear(part, loop, 14.0, [1, 6, 0, 2, 3, 5])
  assert loop.counters["actors"] == 6
  assert loop.lines[-1] == "Actors joined: 1, 6; hearing from 6 actor(s)."
  # Nothing arrives at all (the actors wait for a restarted learner...).
  part.tick(loop, 60.0)
  assert loop.counters["actors"] == 0
  assert loop.status["actor_count"] == (
      "no actor heard from in the last 10 s (before: 0-3, 5, 6)")
  assert loop.lines[-1] == ("Actors fell silent: 0-3, 5, 6; hearing from 0 "
                            "actor(s).")


def test_replayed_trajectories_are_not_news_of_their_actor():
  part, loop = actor_count.ActorCount(window_s=10), _Loop()
  _hear(part, loop, 0.0, [0, 4], replayed=[False, True])
  assert loop.counters["actors"] == 1
  assert loop.status["actor_count"] == "1 actor(s) heard from (0)"


def test_a_slow_actor_counts_for_three_of_its_usual_gaps():
  part, loop = actor_count.ActorCount(window_s=10), _Loop()
  # Actor 7 sends every 20 s, regularly (a long unroll); actor 0 often.
  counts = []
  for now in range(0, 101):
    _hear(part, loop, float(now), [0] + ([7] if now % 20 == 0 else []))
    counts.append(loop.counters["actors"])
  # Silent once, at its first gap (its pace unknown), then counted.
  assert _collapsed(counts) == [2, 1, 2] and counts.index(1) == 11
  assert counts[20:] == [2] * 81
  assert part.window_for(7) > 50 and part.window_for(0) == 10
  # Silent for three of its gaps: gone.
  for now in range(101, 165):
    _hear(part, loop, float(now), [0])
  assert loop.counters["actors"] == 1
  assert loop.lines[-1] == "Actors fell silent: 7; hearing from 1 actor(s)."


def test_an_actor_back_after_a_long_absence_does_not_count_for_ages():
  part, loop = actor_count.ActorCount(window_s=10), _Loop()
  _hear(part, loop, 0.0, [3])
  _hear(part, loop, 1000.0, [3])  # Replaced after a long while.
  assert part.window_for(3) == 3 * 6 * 10  # The gap counts as 6 windows.
  for now in range(1001, 1030):
    _hear(part, loop, float(now), [3])
  assert part.window_for(3) == 10


def _collapsed(values):
  return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_the_window_is_three_progress_lines_and_at_least_ten_seconds():
  assert actor_count.ActorCount.for_interval(1.0).window_s == 10
  assert actor_count.ActorCount.for_interval(5.0).window_s == 15


def test_the_heartbeat_reads_the_same_whichever_part_spoke_first(tmp_path):
  # On a busy machine the supervisor's restart status can reach the loop
  # before the actor count does; the waiting line keeps one order.
  from impala_tf.learner_loop import actors  # pylint: disable=g-import-not-at-top
  from impala_tf.learner_loop import progress  # pylint: disable=g-import-not-at-top
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  (tmp_path / run_dir.ACTORS_STATUS_FILE).write_text(
      '{"restarts": 1, "restarting": ["actor_1"], '
      '"last_error": "InjectedFault: fault injected at \'actor\'"}')
  loop = _Loop()
  loop.start_time = loop.last_batch_time = 0.0
  loop.num_frames = loop.num_updates = 0
  loop.wait_s = 0.0
  actors.ActorHealth(str(tmp_path)).tick(loop, 0.5)
  actor_count.ActorCount(window_s=10).tick(loop, 0.5)
  assert list(loop.status) == ["actors", "actor_count"]
  reporter = progress.ProgressReporter(interval_s=1.0)
  reporter.start(loop)
  reporter.tick(loop, 3.0)
  assert loop.lines == [
      "waiting for actors: no trajectory for 3 s; no actor heard from yet; "
      "1 actor(s) restarting (actor_1), last error: InjectedFault: fault "
      "injected at 'actor'"]
  assert loop.counters == {"actor_restarts": 1, "actors": 0}
