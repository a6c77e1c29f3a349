r"""Starts a population and lets its members take turns: `python -m impala_tf.pbt`.

  python -m impala_tf.pbt --population=4 --concurrent=2 --workdir=DIR \
      --suite=atari57 --levels=pong --total_frames=10000000 \
      [--turn_s=900] [--seed=0] [any python -m impala_tf.launch flag]

Member i is `python -m impala_tf.launch --pbt_dir=DIR --member=i
--seed=<seed + i> [flags]`, a normal run in DIR/member-<i> (output in its
output.log). With `--concurrent` K < N, K members run at a time: when one
has run `--turn_s` seconds and another is waiting, it is stopped (SIGTERM:
it saves a checkpoint) and goes to the back of the line; it resumes from
that checkpoint on its next turn. The same command after an interruption
resumes the population: finished members are not run again. At the end it
prints every member's result and the best member's hyperparameters, and
draws DIR/lineage.png (`lineage.py`).
"""

import collections
import math
import os
import signal
import sys
import time
from typing import Callable, Optional, Sequence

from absl import app
from absl import flags

from impala_tf.records import run_dir
from impala_tf.pbt import store
from impala_tf.runtime import runs

FLAGS = flags.FLAGS
# A member in one of these has nothing left to run.
FINISHED = ("completed", "diverged", "failed")


def member_command(pbt_dir: str, member: int, seed: int,
                   extra: Sequence[str]) -> list[str]:
  return [sys.executable, "-m", "impala_tf.launch", f"--pbt_dir={pbt_dir}",
          f"--member={member}", f"--seed={seed + member}", *extra]


def member_status(pbt_dir: str, member: int) -> Optional[str]:
  record = run_dir.read_json(os.path.join(store.member_logdir(pbt_dir, member),
                                          run_dir.RESULT_FILE))
  return (record or {}).get("status")


def run_members(commands: dict[int, list[str]], pbt_dir: str,
                concurrent: int, turn_s: float, *,
                log: Callable[[str], None] = print, poll_s: float = 1.0,
                status: Callable[[str, int], Optional[str]] = member_status
                ) -> dict[int, str]:
  """Runs every unfinished member, `concurrent` at a time, in turns of
  `turn_s` seconds while others wait; returns member → final status.

  A member that exits without a finished status and without having been
  asked to stop (a crash) is reported and not started again.
  """
  final = {m: status(pbt_dir, m) for m in commands}
  waiting = collections.deque(m for m in sorted(commands)
                              if final[m] not in FINISHED)
  finished = len(commands) - len(waiting)
  if finished:
    log(f"{finished} of {len(commands)} members already finished.")
  pool = runs.RunPool(log=log)
  turns: dict[int, list] = {}  # member → [started, stopping]
  try:
    while waiting or turns:
      while waiting and len(turns) < concurrent:
        member = waiting.popleft()
        pid = pool.start(_name(member), commands[member],
                         store.member_logdir(pbt_dir, member))
        turns[member] = [time.time(), False]
        log(f"member {member}: started (pid {pid}).")
      time.sleep(poll_s)
      _end_turns(pool, turns, len(waiting), turn_s, log)
      for name, code in pool.poll().items():
        member = int(name.rpartition("-")[2])
        stopping = turns.pop(member)[1]
        final[member] = status(pbt_dir, member)
        if final[member] in FINISHED:
          log(f"member {member}: {final[member]} (exit {code}).")
        elif stopping and final[member] == "stopped":
          waiting.append(member)
        else:
          log(f"member {member}: exited with code {code} and status "
              f"{final[member]}; not restarted (see its output.log).")
          final[member] = final[member] or "failed"
  finally:
    # Interrupted (Ctrl-C, SIGTERM): the running members stop and save.
    pool.stop()
  return final


def _name(member: int) -> str:
  return f"member-{member}"


def _end_turns(pool: runs.RunPool, turns: dict, waiting: int, turn_s: float,
               log) -> None:
  """Stops, longest-running first, as many members past their turn as
  there are waiting members not yet given a place by a stop under way."""
  now = time.time()
  places = waiting - sum(1 for _, stopping in turns.values() if stopping)
  due = sorted((entry[0], member) for member, entry in turns.items()
               if not entry[1] and now - entry[0] >= turn_s)
  for _, member in due[:max(0, places)]:
    entry = turns[member]
    log(f"member {member}: turn over after {now - entry[0]:.0f} s; "
        "stopping it for a waiting member.")
    pool.ask_to_stop(_name(member))
    entry[1] = True


def summary(pbt_dir: str, members: Sequence[int]) -> tuple[list[str], Optional[int]]:
  """Lines describing each member's end, and the best member (highest
  final mean return, result.json's `mean_return`)."""
  states = store.read_members(pbt_dir)
  lines, best, best_value = [], None, -math.inf
  for member in members:
    record = run_dir.read_json(os.path.join(
        store.member_logdir(pbt_dir, member), run_dir.RESULT_FILE)) or {}
    value = record.get("mean_return", math.nan)
    value = math.nan if value is None else float(value)
    hyper = (states.get(member) or {}).get("hyperparameters", {})
    lines.append(f"member {member}: {record.get('status', 'not run')}, "
                 f"{record.get('num_frames', 0):,} frames, final return "
                 f"{value:.2f}; " + ", ".join(
                     f"{k} {v:.3g}" for k, v in sorted(hyper.items())))
    if math.isfinite(value) and value > best_value:
      best, best_value = member, value
  return lines, best


def _interrupt(signum, frame):
  """SIGTERM ends this command like Ctrl-C: its members stop and save."""
  del signum, frame
  raise KeyboardInterrupt


def _define_flags():
  flags.DEFINE_integer("population", 24, "Members (App. F: 24).",
                       lower_bound=1)
  flags.DEFINE_integer("concurrent", None, "Members running at once "
                       "(default all).", lower_bound=1)
  flags.DEFINE_string("workdir", None, "The population's directory.")
  flags.DEFINE_float("turn_s", 900.0, "With --concurrent < --population: "
                     "seconds a member runs before a waiting one takes its "
                     "place [ours].", lower_bound=1.0)
  flags.DEFINE_integer("seed", 0, "Member i runs with --seed=<seed + i>.",
                       lower_bound=0)


def main(argv):
  extra = argv[1:]  # Every other flag goes to every member.
  if not FLAGS.workdir:
    raise app.UsageError("--workdir=DIR is required.")
  from impala_tf import launch_flags  # pylint: disable=g-import-not-at-top
  launch_flags.refuse_set_flags(
      extra, ("--pbt_dir", "--member", "--logdir", "--seed"),
      "the population command (--workdir and --seed set it)")
  commands = {m: member_command(FLAGS.workdir, m, FLAGS.seed, extra)
              for m in range(FLAGS.population)}
  # A member's flags resolved as the launcher will: a bad one is one line
  # now, not a population of failed members later.
  launch_flags.plan_from_argv(["impala_tf.launch", *commands[0][3:]],
                              environ={})
  # Quiet TF, its CPU kernels decided, before anything here imports it
  # (the files are read through tf.io.gfile).
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  cpu.configure_onednn("auto", "learner")
  tf_startup.set_log_level()
  tf_startup.import_tensorflow()
  concurrent = FLAGS.concurrent or FLAGS.population
  store.write_population(FLAGS.workdir, {
      "population": FLAGS.population, "concurrent": concurrent,
      "seed": FLAGS.seed, "flags": extra, "started": time.time()})

  print(f"Population of {FLAGS.population} in {FLAGS.workdir}, {concurrent} "
        "at a time" + (f", turns of {FLAGS.turn_s:g} s" if concurrent <
                       FLAGS.population else "") + ".", flush=True)
  signal.signal(signal.SIGTERM, _interrupt)
  final = run_members(commands, FLAGS.workdir, concurrent, FLAGS.turn_s,
                      log=lambda line: print(line, flush=True))
  lines, best = summary(FLAGS.workdir, sorted(commands))
  print("\n".join(lines), flush=True)
  if best is not None:
    print(f"Best member: {best}.", flush=True)
  from impala_tf.pbt import lineage  # pylint: disable=g-import-not-at-top
  try:
    path = lineage.plot(FLAGS.workdir,
                        os.path.join(FLAGS.workdir, "lineage.png"))
    print(f"Wrote {path}.", flush=True)
  except ValueError as e:
    print(f"No lineage plot: {e}", flush=True)
  return 0 if all(s in ("completed",) for s in final.values()) else 1


def run():
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  # Flags this command does not know go to every member.
  cli.run("pbt", main, define_flags=_define_flags, known_only=True)
