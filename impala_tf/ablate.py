r"""The paper's ablations as a grid of ordinary runs: `python -m impala_tf.ablate`.

  python -m impala_tf.ablate --suite=atari57 --levels=pong \
      --variants=vtrace,one_step_is,epsilon,none --replay=off,on \
      --policy_lags=none --seeds=1 --total_frames=5000000 --output=DIR \
      [--parallel=1] [any python -m impala_tf.launch flag]

Every grid point (level × replay × policy lag × variant × seed) is a normal
run of `python -m impala_tf.launch` in its own run directory under DIR, with
`--correction` (Sec. 5.2.2), `--replay_capacity` (Table D.3; 0 when off),
`--policy_lag` (App. E.1) and `--seed` set; every other flag given here goes
to every run. `--parallel=K` runs K at once. The grid can be interrupted
(Ctrl-C or SIGTERM to the runner stops the runs under way, each with a
checkpoint) and started again with the same command: finished runs
(completed, or diverged) are never redone, the others resume from their
checkpoints.

At the end it writes DIR/table.md and DIR/table.csv shaped like the paper's
Table 2 (rows: replay × policy lag × variant; columns: levels; cells: the
final return, i.e. the mean of the last 100 episodes, as a mean over seeds
with its spread, and the mean over the 3 best runs when there are more),
DIR/curves.png (the mean return over seeds against frames, one panel per
level), and TensorBoard HParams summaries, so `tensorboard --logdir=DIR`
compares the grid in its HParams tab. `--levels=table2` with
`--suite=dmlab30` is the paper's five Table 2 tasks, one run each.

`--sweep=N` is the paper's sweep (Sec. 5.2.2, Table D.1): N sets of
learning rate, entropy cost and RMSProp epsilon drawn once from Table D.1's
ranges (`--sweep_seed`; kept in DIR/sweep.json), every grid point run on
each set (the same sets for every variant), and each cell also reports
Table 2's figure: the mean final return of the best 3 of the N draws.

With `--run_mode=anakin` (levels written in TensorFlow: catch, CartPole-v1)
every run is an anakin run; `--together` then trains all unfinished runs of
the grid in one process and one compiled program
(`impala_tf.anakin.together`, its output in DIR/together/output.log),
each still in its own run directory; `--together --vectorise` stacks the
agents' weights into wider kernels (runs that differ only in their seed:
`impala_tf.anakin.vectorised`).
"""

import csv
import dataclasses
import io
import itertools
import math
import os
import signal
import sys
import time
from typing import Optional, Sequence

from absl import app
from absl import flags

import numpy as np

from impala_tf.runtime import runs

FLAGS = flags.FLAGS
_FINISHED = ("completed", "diverged")


@dataclasses.dataclass(frozen=True)
class GridPoint:
  """One run of the grid."""
  level: str
  replay: bool
  policy_lag: Optional[int]
  variant: str
  seed: int
  draw: Optional[int] = None  # The sweep's hyperparameter set, if any.

  @property
  def row(self) -> tuple:
    return (self.replay, self.policy_lag, self.variant)

  @property
  def name(self) -> str:
    lag = "none" if self.policy_lag is None else self.policy_lag
    draw = "" if self.draw is None else f"-draw_{self.draw}"
    return (f"{self.level}/replay_{'on' if self.replay else 'off'}-lag_{lag}"
            f"-{self.variant}{draw}-seed_{self.seed}")


@dataclasses.dataclass(frozen=True)
class TogetherPoint:
  """The one process of `--together` (its output in DIR/together)."""
  name: str = "together"


def row_label(row: tuple) -> str:
  replay, lag, variant = row
  return (f"{'replay' if replay else 'no replay'}, "
          f"{'lag ' + str(lag) if lag is not None else 'queue lag'}, "
          f"{variant}")


def grid(levels: Sequence[str], replay: Sequence[bool],
         policy_lags: Sequence[Optional[int]], variants: Sequence[str],
         seeds: int, log=print, draws: int = 0) -> list[GridPoint]:
  """Every valid combination (replay and a controlled lag exclude each
  other: replayed trajectories are older than any lag); with `draws`, each
  combination once per hyperparameter set of the sweep, the same sets for
  every variant."""
  points = []
  for level, on, lag, variant, draw, seed in itertools.product(
      levels, replay, policy_lags, variants,
      range(draws) if draws else [None], range(seeds)):
    if on and lag is not None:
      continue
    points.append(GridPoint(level, on, lag, variant, seed, draw))
  skipped = len(levels) * len(replay) * len(policy_lags) * len(variants) * (
      seeds) * max(draws, 1) - len(points)
  if skipped:
    log(f"Skipping {skipped} grid points that combine replay with a "
        "controlled policy lag.")
  return points


SWEEP_FILE = "sweep.json"


def sweep_draws(output: str, draws: int, seed: int) -> list[dict]:
  """The sweep's hyperparameter sets: Table D.1's ranges drawn once with
  `seed` (or read from DIR/sweep.json, where `save_sweep` keeps them), so a
  resumed grid and every variant run on the same sets (Sec. 5.2.2: "24 pre-sampled hyperparameter
  combinations, the same for every method")."""
  from impala_tf.pbt import rules  # pylint: disable=g-import-not-at-top
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  path = os.path.join(output, SWEEP_FILE)
  saved = run_dir.read_json(path)
  if saved is not None:
    if (saved["draws"], saved["seed"]) != (draws, seed):
      raise app.UsageError(
          f"{path} holds a sweep of {saved['draws']} draws with seed "
          f"{saved['seed']}; this command asks for {draws} with seed {seed}. "
          "Give the same --sweep and --sweep_seed, or another --output.")
    return saved["hyperparameters"]
  rng = np.random.default_rng(seed)
  return [rules.sweep_draw(rng) for _ in range(draws)]


def save_sweep(output: str, draws: int, seed: int, sets: list[dict]) -> None:
  """Keeps the sweep's sets in DIR/sweep.json (`sweep_draws` reads them)."""
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  run_dir.write_json(os.path.join(output, SWEEP_FILE),
                     {"draws": draws, "seed": seed, "hyperparameters": sets})


def command(point: GridPoint, output: str, suite: str, total_frames: int,
            replay_capacity: int, extra: Sequence[str],
            hyperparameters: Optional[dict] = None) -> list[str]:
  lag = "none" if point.policy_lag is None else str(point.policy_lag)
  drawn = [f"--{name}={value!r}" for name, value in
           sorted((hyperparameters or {}).items())]
  return [sys.executable, "-m", "impala_tf.launch", f"--suite={suite}",
          f"--levels={point.level}", f"--correction={point.variant}",
          f"--replay_capacity={replay_capacity if point.replay else 0}",
          f"--policy_lag={lag}", f"--seed={point.seed}",
          f"--total_frames={total_frames}", *drawn,
          f"--logdir={os.path.join(output, point.name)}", *extra]


def together_command(todo: Sequence[GridPoint], commands: dict,
                     output: str, vectorise: bool = False) -> dict:
  """{the "together" point: the command training `todo` in one program
  (`vectorise`: with the agents vectorised)}, its runs' launch flags
  written to DIR/together.json (empty if none)."""
  import json  # pylint: disable=g-import-not-at-top
  if not todo:
    return {}
  path = os.path.join(output, "together.json")
  with open(path, "w") as f:
    json.dump([commands[p][3:] for p in todo], f, indent=1)
  return {TogetherPoint(): [sys.executable, "-m", "impala_tf.anakin.together",
                            *(["--vectorise"] if vectorise else []), path]}


def status(output: str, point: GridPoint) -> Optional[dict]:
  return runs.result(os.path.join(output, point.name))


def unfinished(points: Sequence[GridPoint], output: str) -> list[GridPoint]:
  """The points whose runs have not finished (completed or diverged)."""
  return [p for p in points
          if (status(output, p) or {}).get("status") not in _FINISHED]


def run_grid(points: Sequence[GridPoint], commands: dict, parallel: int,
             output: str, log=print,
             stop_grace_s: float = runs.STOP_GRACE_S) -> None:
  """Runs every unfinished point, `parallel` at a time; each run's output
  goes to its run directory's `output.log`.

  SIGTERM or SIGINT stops the grid cleanly: the runs under way get SIGTERM
  (each saves a checkpoint and ends as "stopped"; any still running after
  `stop_grace_s` is killed), nothing new starts, and `GridStopped` is
  raised. The same command later resumes them.
  """
  todo = unfinished(points, output)
  done = len(points) - len(todo)
  if done:
    log(f"{done} of {len(points)} runs already finished; running the other "
        f"{len(todo)}.")
  pool = runs.RunPool(log=log, grace_s=stop_grace_s)
  signals = []
  previous = {sig: signal.signal(sig, lambda sig, _: signals.append(sig))
              for sig in (signal.SIGTERM, signal.SIGINT)}
  try:
    _run(todo, pool, commands, parallel, output, log, len(points), done,
         signals)
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
    interrupted = sorted(pool.running)
    _stop(pool, log, stop_grace_s)
  if signals:
    raise GridStopped(
        f"Stopped by {signal.Signals(signals[0]).name}: {len(interrupted)} "
        f"run(s) interrupted, {len(todo)} not started; the same command "
        "resumes the grid.")


class GridStopped(Exception):
  """The grid was stopped by a signal; its runs resume with the same
  command."""


def _stop(pool: runs.RunPool, log, grace_s: float) -> None:
  """Stops the runs under way and says how each ended."""
  for name, code in pool.stop().items():
    result = pool.result(name) or {}
    if code == -signal.SIGKILL and result.get("status") != "stopped":
      log(f"    {name}: still running {grace_s:.0f} s after SIGTERM; "
          "killed (it resumes from its last checkpoint).")
      continue
    log(f"    {name}: {result.get('status', 'no result')} at "
        f"{result.get('num_frames', 0):,} frames (exit {code})")


def _run(todo, pool, commands, parallel, output, log, total, done, signals):
  started = {}
  while (todo or pool.running) and not signals:
    while todo and len(pool.running) < parallel:
      point = todo.pop(0)
      pool.start(point.name, commands[point],
                 os.path.join(output, point.name))
      started[point.name] = time.time()
      log(f"[{done + len(pool.running)}/{total}] {point.name}: started")
    time.sleep(1.0)
    for name, code in pool.poll().items():
      done += 1
      result = pool.result(name) or {}
      log(f"[{done}/{total}] {name}: "
          f"{result.get('status', 'finished' if not code else 'no result')}"
          f" (exit {code}), return {result.get('mean_return', math.nan):.2f}, "
          f"{(time.time() - started[name]) / 60:.0f} min")
      if code:
        # The run's last line: its error, when it failed.
        path = runs.output_log(os.path.join(output, name))
        log(f"    {pool.last_line(name) or f'(nothing in {path})'}")


def summarize(points: Sequence[GridPoint], output: str) -> dict:
  """row → level → [(draw, final return), ...], one per finished run (the
  draw is None outside a sweep)."""
  table: dict = {}
  for point in points:
    result = status(output, point)
    if not result or result.get("status") not in _FINISHED:
      continue
    table.setdefault(point.row, {}).setdefault(point.level, []).append(
        (point.draw, float(result.get("mean_return", math.nan))))
  return table


def best_of_draws(entries, best: int = 3) -> tuple[float, int]:
  """(mean of the `best` highest per-draw means, draws): Table 2's "average
  final return over the 3 best hyperparameter settings". Each draw's runs
  (seeds) are averaged first. NaN and 0 outside a sweep."""
  per_draw: dict = {}
  for draw, value in entries:
    if draw is not None and not math.isnan(value):
      per_draw.setdefault(draw, []).append(value)
  means = sorted(np.mean(values) for values in per_draw.values())
  if not means:
    return math.nan, 0
  return float(np.mean(means[-best:])), len(means)


def _cell(entries) -> str:
  values = [v for _, v in entries if not math.isnan(v)]
  if not values:
    return "-"
  text = f"{np.mean(values):.2f}"
  if len(values) > 1:
    text += f" ± {np.std(values):.2f}"
  best, draws = best_of_draws(entries)
  if draws:
    text += f" (best 3 of {draws} draws: {best:.2f})"
  elif len(values) > 3:
    text += f" (top 3: {np.mean(sorted(values)[-3:]):.2f})"
  return text + f" [{len(values)}]"


def write_tables(table: dict, levels: Sequence[str], output: str) -> str:
  """DIR/table.md and DIR/table.csv; returns the markdown."""
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  rows = sorted(table, key=lambda r: (r[0], -1 if r[1] is None else r[1],
                                      r[2]))
  lines = ["| | " + " | ".join(levels) + " |",
           "|---|" + "---|" * len(levels)]
  for row in rows:
    lines.append(f"| {row_label(row)} | " + " | ".join(
        _cell(table[row].get(level, [])) for level in levels) + " |")
  markdown = ("Final return (mean of the last 100 episodes of each run): "
              "mean ± spread over the runs, [runs]; in a sweep, the mean of "
              "the best 3 hyperparameter draws as the paper's Table 2 "
              "reports (each draw's seeds averaged first); otherwise, with "
              "more than 3 runs, the mean of the best 3 runs.\n\n" +
              "\n".join(lines) + "\n")
  run_dir.write_text(os.path.join(output, "table.md"), markdown)
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["replay", "policy_lag", "correction", "level", "runs",
                   "mean_return", "std_return", "top3_mean", "draws",
                   "best3_of_draws", "returns"])
  for row in rows:
    for level in levels:
      entries = table[row].get(level, [])
      values = [v for _, v in entries if not math.isnan(v)]
      if not values:
        continue
      best, draws = best_of_draws(entries)
      writer.writerow([
          "on" if row[0] else "off", "none" if row[1] is None else row[1],
          row[2], level, len(values), np.mean(values), np.std(values),
          np.mean(sorted(values)[-3:]), draws or "",
          "" if math.isnan(best) else best,
          ";".join(f"{v:g}" for v in values)])
  run_dir.write_text(os.path.join(output, "table.csv"), out.getvalue())
  return markdown


def write_curves(points: Sequence[GridPoint], levels: Sequence[str],
                 output: str) -> str:
  """DIR/curves.png: one panel per level and setting (replay × policy
  lag), one line per variant (the same colour in every panel): the mean
  return over seeds, on the frames of the first seed."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from impala_tf.records import curves as curves_lib  # pylint: disable=g-import-not-at-top
  settings = sorted({p.row[:2] for p in points},
                    key=lambda r: (r[0], -1 if r[1] is None else r[1]))
  variants = list(dict.fromkeys(p.variant for p in points))
  colours = dict(zip(variants, plt.rcParams["axes.prop_cycle"].by_key()[
      "color"]))
  fig, axes = plt.subplots(len(levels), len(settings),
                           figsize=(4 * len(settings), 3.2 * len(levels)),
                           squeeze=False, sharey="row")
  for row, level in enumerate(levels):
    for column, setting in enumerate(settings):
      ax = axes[row][column]
      for variant in variants:
        curves = []
        for point in points:
          if (point.level, point.row) != (level, (*setting, variant)):
            continue
          curve = curves_lib.read_scalars(os.path.join(output, point.name)).get(
              f"return/{level}")
          if curve:
            curves.append(np.array(curve))
        if not curves:
          continue
        frames = curves[0][:, 0]
        values = np.mean([np.interp(frames, c[:, 0], c[:, 1])
                          for c in curves], axis=0)
        ax.plot(frames / 1e6, values, color=colours[variant],
                label=f"{variant} ({len(curves)})")
      replay, lag = setting
      ax.set_title(f"{level}: {'replay' if replay else 'no replay'}, "
                   f"{'lag ' + str(lag) if lag is not None else 'queue lag'}",
                   fontsize="medium")
      ax.set_xlabel("frames (millions)")
      if column == 0:
        ax.set_ylabel("mean return, last 100 episodes")
      ax.grid(alpha=0.3)
      ax.legend(fontsize="small", title="variant (seeds)",
                title_fontsize="small")
  fig.tight_layout()
  path = os.path.join(output, "curves.png")
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def write_hparams(points: Sequence[GridPoint], output: str) -> None:
  """TensorBoard HParams summaries: the grid's hyperparameters and each
  run's final return, one trial per run directory."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top
  params = [hp.HParam("level"), hp.HParam("correction"), hp.HParam("replay"),
            hp.HParam("policy_lag"), hp.HParam("seed"), hp.HParam("draw")]
  with tf.summary.create_file_writer(output).as_default():
    hp.hparams_config(hparams=params,
                      metrics=[hp.Metric("final_return",
                                         display_name="final return")])
  for point in points:
    result = status(output, point)
    if not result:
      continue
    directory = os.path.join(output, point.name)
    with tf.summary.create_file_writer(directory).as_default():
      hp.hparams({"level": point.level, "correction": point.variant,
                  "replay": "on" if point.replay else "off",
                  "policy_lag": ("none" if point.policy_lag is None
                                 else str(point.policy_lag)),
                  "seed": point.seed,
                  "draw": "none" if point.draw is None else str(point.draw)},
                 trial_id=point.name)
      tf.summary.scalar("final_return",
                        float(result.get("mean_return", math.nan)),
                        step=int(result.get("num_frames", 0)))


def _define_flags():
  flags.DEFINE_string("suite", "atari57", "The suite every run trains on.")
  flags.DEFINE_list("levels", [], "Levels, one run each ('table2' on "
                    "dmlab30: the paper's five Table 2 tasks); default the "
                    "suite's (Pong for Atari).")
  flags.DEFINE_list("variants", ["vtrace", "one_step_is", "epsilon", "none"],
                    "Off-policy corrections (Sec. 5.2.2).")
  flags.DEFINE_list("replay", ["off"], "Replay settings to run: off, on.")
  flags.DEFINE_integer("replay_capacity", 10_000, "Trajectories in the "
                       "replay buffer when replay is on (Table D.3).",
                       lower_bound=1)
  flags.DEFINE_list("policy_lags", ["none"], "Controlled policy lags "
                    "(App. E.1): 'none' (the queue's own lag) or integers.")
  flags.DEFINE_integer("seeds", 1, "Runs per grid point, seeds 0..N-1.",
                       lower_bound=1)
  flags.DEFINE_integer("sweep", 0, "Hyperparameter sweep: N sets of "
                       "learning rate, entropy cost and RMSProp epsilon "
                       "drawn once from Table D.1's ranges (kept in "
                       "DIR/sweep.json), every variant run on each (the "
                       "paper's Table 2: 24 draws, best 3 reported); 0: "
                       "the flags' hyperparameters.", lower_bound=0)
  flags.DEFINE_integer("sweep_seed", 0, "Seeds the sweep's draws.",
                       lower_bound=0)
  flags.DEFINE_integer("total_frames", 10_000_000, "Frames of every run.",
                       lower_bound=1)
  flags.DEFINE_string("output", None, "The grid's directory; default "
                      "runs/ablate-<suite>-<time>. The same command with "
                      "the same --output resumes the grid.")
  flags.DEFINE_integer("parallel", 1, "Runs at once.", lower_bound=1)
  flags.DEFINE_bool("together", False, "With --run_mode=anakin: train every "
                    "unfinished run in one compiled program "
                    "(impala_tf/anakin/together.py) instead of one process "
                    "each.")
  flags.DEFINE_bool("vectorise", False, "With --together: the agents' "
                    "weights stacked and each layer one wider kernel for all "
                    "(impala_tf/anakin/vectorised.py): for runs that differ "
                    "only in their seed (one variant, --seeds N).")


def _resolve_levels(suite_name: str, levels: Sequence[str]) -> list[str]:
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  return list(suites.get(suite_name).resolve_levels(levels or None))


# Launch flags every run of the grid gets from the runner.
_SET_PER_RUN = ("--suite", "--levels", "--correction", "--replay_capacity",
                "--policy_lag", "--seed", "--total_frames", "--logdir")


def _check_runs(commands, extra: Sequence[str], sweep: bool,
                together: bool = False, vectorise: bool = False) -> None:
  """Refuses launch flags the grid sets per run, and resolves every run's
  plan as the launcher will (a bad flag or combination is one line now,
  not a failed run later)."""
  from impala_tf import launch_flags  # pylint: disable=g-import-not-at-top
  from impala_tf.pbt import rules  # pylint: disable=g-import-not-at-top
  drawn = tuple(f"--{name}" for name in rules.SWEEP_HYPERPARAMETERS)
  launch_flags.refuse_set_flags(
      extra, _SET_PER_RUN + (drawn if sweep else ()),
      "the ablation runner (its own flags set it)")
  plans = [launch_flags.plan_from_argv(["impala_tf.launch", *argv[3:]],
                                       environ={}) for argv in commands]
  if together:
    from impala_tf.anakin import together as together_lib  # pylint: disable=g-import-not-at-top
    try:
      together_lib.check_together(plans)
    except ValueError as e:
      raise app.UsageError(f"--together: {e}") from None
  if vectorise:
    if not together:
      raise app.UsageError("--vectorise goes with --together.")
    from impala_tf.anakin import vectorised  # pylint: disable=g-import-not-at-top
    try:
      vectorised.check_vectorisable([plan.experiment for plan in plans])
    except ValueError as e:
      raise app.UsageError(f"--vectorise: {e}") from None


def main(argv):
  extra = argv[1:]  # Flags this runner does not know go to every run.
  output = FLAGS.output or os.path.join(
      "runs", f"ablate-{FLAGS.suite}-{time.strftime('%Y%m%d-%H%M%S')}")
  for word in FLAGS.replay:
    if word not in ("off", "on"):
      raise app.UsageError(f"--replay takes off and/or on, got {word!r}.")
  try:
    lags = [None if w == "none" else int(w) for w in FLAGS.policy_lags]
  except ValueError:
    raise app.UsageError(f"--policy_lags takes 'none' and integers, got "
                         f"{FLAGS.policy_lags}.") from None
  if any(lag is not None and lag < 0 for lag in lags):
    raise app.UsageError("--policy_lags must be >= 0.")
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  bad = [v for v in FLAGS.variants if v not in presets.CORRECTIONS]
  if bad:
    raise app.UsageError(f"--variants {bad} unknown; expected "
                         f"{', '.join(presets.CORRECTIONS)}.")
  try:
    levels = _resolve_levels(FLAGS.suite, FLAGS.levels)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  points = grid(levels, [w == "on" for w in FLAGS.replay], lags,
                FLAGS.variants, FLAGS.seeds, draws=FLAGS.sweep)
  sets = (sweep_draws(output, FLAGS.sweep, FLAGS.sweep_seed)
          if FLAGS.sweep else [])
  commands = {p: command(p, output, FLAGS.suite, FLAGS.total_frames,
                         FLAGS.replay_capacity, extra,
                         sets[p.draw] if p.draw is not None else None)
              for p in points}
  _check_runs(commands.values(), extra, sweep=bool(FLAGS.sweep),
              together=FLAGS.together, vectorise=FLAGS.vectorise)
  os.makedirs(output, exist_ok=True)
  if FLAGS.sweep:
    save_sweep(output, FLAGS.sweep, FLAGS.sweep_seed, sets)
  print(f"Ablation grid: {len(points)} runs of {FLAGS.total_frames:,} frames "
        f"in {output}, {FLAGS.parallel} at a time.", flush=True)
  points_to_run = points
  if FLAGS.together:
    commands = together_command(unfinished(points, output), commands, output,
                                vectorise=FLAGS.vectorise)
    points_to_run = list(commands)  # The one "together" run, or none.
  try:
    run_grid(points_to_run, commands, FLAGS.parallel, output,
             log=lambda line: print(line, flush=True))
  except GridStopped as e:
    print(e if FLAGS.output else f"{e} (with --output={output})", flush=True)
    return 1
  # The runner's own TF work (summaries): its CPU kernels decided first.
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  cpu.configure_onednn("auto", "learner")
  tf_startup.set_log_level()
  tf_startup.import_tensorflow()
  table = summarize(points, output)
  print(write_tables(table, levels, output))
  print(f"Wrote {write_curves(points, levels, output)}, table.md, "
        "table.csv and HParams summaries.")
  write_hparams(points, output)


if __name__ == "__main__":
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  # Flags this runner does not know go to every run.
  cli.run("ablate", main, define_flags=_define_flags, known_only=True)
