"""`impala_tf.ablate`: a grid of ordinary runs, resumable, summarised like
the paper's Table 2."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from impala_tf import ablate
from impala_tf.config import experiment


def test_the_grid_skips_replay_with_a_controlled_lag():
  notes = []
  points = ablate.grid(["pong"], [False, True], [None, 2],
                       ["vtrace", "none"], seeds=2, log=notes.append)
  # 2 replay × 2 lags × 2 variants × 2 seeds = 16, minus replay with lag 2.
  assert len(points) == 12
  assert not [p for p in points if p.replay and p.policy_lag is not None]
  assert "Skipping 4 grid points" in notes[0]
  command = ablate.command(points[0], "/out", "atari57", 1000, 10_000,
                           ["--num_actors=1"])
  assert command[1:] == [
      "-m", "impala_tf.launch", "--suite=atari57", "--levels=pong",
      "--correction=vtrace", "--replay_capacity=0", "--policy_lag=none",
      "--seed=0", "--total_frames=1000",
      "--logdir=/out/pong/replay_off-lag_none-vtrace-seed_0", "--num_actors=1"]


def test_table2_names_the_papers_five_tasks_with_the_single_task_preset():
  exp = experiment.build("dmlab30", ["table2"])
  assert exp.levels == ("rooms_watermaze", "rooms_keys_doors_puzzle",
                        "lasertag_three_opponents_small",
                        "explore_goal_locations_small", "seekavoid_arena_01")
  assert exp.config.reward_clipping == "abs_one"  # dmlab_single_task.
  assert exp.config.unroll_length == 100
  assert ablate._resolve_levels("dmlab30", ["table2"])[-1] == (  # pylint: disable=protected-access
      "seekavoid_arena_01")


def test_a_run_that_fails_is_reported_with_its_last_line(tmp_path):
  (point,) = ablate.grid(["catch"], [False], [0], ["vtrace"], seeds=1)
  fail = [sys.executable, "-c",
          "print('starting'); print('impala_tf.launch: error: too few "
          "environments'); raise SystemExit(2)"]
  notes = []
  ablate.run_grid([point], {point: fail}, parallel=1, output=str(tmp_path),
                  log=notes.append)
  assert notes[-2].startswith("[1/1] catch/replay_off-lag_0-vtrace-seed_0: "
                              "no result (exit 2)")
  assert notes[-1] == "    impala_tf.launch: error: too few environments"


_STOPPABLE = """
import json, os, signal, sys, time
logdir = sys.argv[1]
def stop(*_):
  with open(os.path.join(logdir, "result.json"), "w") as f:
    json.dump({"status": "stopped", "num_frames": 1234}, f)
  print("got SIGTERM", flush=True)
  raise SystemExit(0)
signal.signal(signal.SIGTERM, stop if logdir.endswith("seed_0")
              else signal.SIG_IGN)
print("ready", flush=True)
time.sleep(120)
"""


def test_a_signal_stops_the_runs_under_way_and_starts_no_more(tmp_path):
  points = ablate.grid(["catch"], [False], [None], ["vtrace"], seeds=3)
  commands = {p: [sys.executable, "-c", _STOPPABLE, str(tmp_path / p.name)]
              for p in points}
  logs = [tmp_path / p.name / "output.log" for p in points]

  def signal_when_both_run():
    while not all(f.exists() and b"ready" in f.read_bytes() for f in logs[:2]):
      time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=signal_when_both_run, daemon=True).start()
  notes = []
  with pytest.raises(ablate.GridStopped) as stopped:
    ablate.run_grid(points, commands, parallel=2, output=str(tmp_path),
                    log=notes.append, stop_grace_s=3)
  assert str(stopped.value) == (
      "Stopped by SIGTERM: 2 run(s) interrupted, 1 not started; the same "
      "command resumes the grid.")
  # The first run stopped as asked; the second ignored SIGTERM and was
  # killed after the grace period; the third never started.
  assert "got SIGTERM" in logs[0].read_text()
  assert ("    catch/replay_off-lag_none-vtrace-seed_0: stopped at 1,234 "
          "frames (exit 0)") in notes
  assert ("    catch/replay_off-lag_none-vtrace-seed_1: still running 3 s "
          "after SIGTERM; killed (it resumes from its last checkpoint)."
          ) in notes
  assert not logs[2].exists()
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow
def test_a_small_grid_runs_resumes_and_writes_table_2(tmp_path):
  # No --levels: the suite's own (Catch's one level).
  args = [sys.executable, "-m", "impala_tf.ablate", "--suite=catch",
          "--variants=vtrace,none", "--replay=off,on",
          "--replay_capacity=64", "--seeds=1", "--total_frames=6400",
          f"--output={tmp_path}", "--parallel=2", "--run_mode=threads",
          "--num_actors=1"]
  first = subprocess.run(args, capture_output=True, text=True, timeout=600)
  assert first.returncode == 0, first.stdout + first.stderr
  assert "Ablation grid: 4 runs of 6,400 frames" in first.stdout
  assert "2 at a time" in first.stdout
  rows = list(csv.DictReader((tmp_path / "table.csv").open()))
  assert {(r["replay"], r["correction"]) for r in rows} == {
      ("off", "vtrace"), ("off", "none"), ("on", "vtrace"), ("on", "none")}
  for row in rows:
    assert row["level"] == "catch" and row["runs"] == "1"
    run = (tmp_path / "catch" /
           f"replay_{row['replay']}-lag_none-{row['correction']}-seed_0")
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed"
    assert float(row["mean_return"]) == pytest.approx(result["mean_return"])
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["correction"] == row["correction"]
    assert config["replay_capacity"] == (64 if row["replay"] == "on" else 0)
  table = (tmp_path / "table.md").read_text()
  assert "| replay, queue lag, vtrace |" in table
  assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
  assert list(tmp_path.glob("events.out.tfevents.*"))  # HParams config.
  # Started again: nothing is redone.
  again = subprocess.run(args, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr
  assert "4 of 4 runs already finished; running the other 0." in again.stdout


def test_a_sweep_shares_its_draws_across_variants_and_reports_the_best_3(
    tmp_path):
  from absl import app  # pylint: disable=g-import-not-at-top
  from impala_tf.pbt import rules  # pylint: disable=g-import-not-at-top
  points = ablate.grid(["catch"], [False], [None], ["vtrace", "none"],
                       seeds=2, draws=4)
  assert len(points) == 2 * 4 * 2
  sets = ablate.sweep_draws(str(tmp_path), 4, seed=1)
  assert len({tuple(sorted(d.items())) for d in sets}) == 4
  for drawn in sets:  # Table D.1's ranges.
    assert set(drawn) == set(rules.SWEEP_HYPERPARAMETERS)
    assert 5e-6 <= drawn["learning_rate"] <= 5e-3
    assert 5e-5 <= drawn["entropy_cost"] <= 1e-2
    assert drawn["rmsprop_epsilon"] in (1e-1, 1e-3, 1e-5, 1e-7)
  commands = {p: ablate.command(p, str(tmp_path), "catch", 640, 64, [],
                                sets[p.draw]) for p in points}

  def drawn_flags(point):
    return sorted(a for a in commands[point]
                  if a.split("=")[0] in ("--learning_rate", "--entropy_cost",
                                         "--rmsprop_epsilon"))
  by_draw = {}
  for point in points:
    by_draw.setdefault(point.draw, set()).add(tuple(drawn_flags(point)))
  # Every variant and seed of a draw runs on the same set; draws differ.
  assert all(len(flags) == 1 for flags in by_draw.values())
  assert len({next(iter(f)) for f in by_draw.values()}) == 4
  assert drawn_flags(points[0])[0] == (
      f"--entropy_cost={sets[0]['entropy_cost']!r}")
  # Kept for a resumed grid; another sweep in the same directory is refused.
  ablate.save_sweep(str(tmp_path), 4, 1, sets)
  assert ablate.sweep_draws(str(tmp_path), 4, seed=1) == sets
  with pytest.raises(app.UsageError, match="sweep of 4 draws with seed 1"):
    ablate.sweep_draws(str(tmp_path), 24, seed=1)
  # Table 2's figure: each draw's seeds averaged, then the best 3 draws.
  finals = {("vtrace", 0): (1.0, 3.0), ("vtrace", 1): (5.0, 5.0),
            ("vtrace", 2): (0.0, 0.0), ("vtrace", 3): (9.0, 7.0),
            ("none", 0): (1.0, 1.0), ("none", 1): (1.0, 1.0),
            ("none", 2): (1.0, 1.0), ("none", 3): (1.0, 4.0)}
  for point in points:
    directory = tmp_path / point.name
    directory.mkdir(parents=True)
    value = finals[(point.variant, point.draw)][point.seed]
    (directory / "result.json").write_text(json.dumps(
        {"status": "completed", "mean_return": value}))
  table = ablate.summarize(points, str(tmp_path))
  markdown = ablate.write_tables(table, ["catch"], str(tmp_path))
  rows = {r["correction"]: r for r in csv.DictReader(
      (tmp_path / "table.csv").open())}
  # vtrace's draws: 2, 5, 0, 8 -> best 3: (2 + 5 + 8) / 3 = 5.
  assert float(rows["vtrace"]["best3_of_draws"]) == pytest.approx(5.0)
  assert rows["vtrace"]["draws"] == "4"
  # Over runs instead (today's figure): the best 3 of 8 runs, 9, 7, 5.
  assert float(rows["vtrace"]["top3_mean"]) == pytest.approx(7.0)
  assert float(rows["none"]["best3_of_draws"]) == pytest.approx(
      (1.0 + 1.0 + 2.5) / 3)
  assert "(best 3 of 4 draws: 5.00)" in markdown


def _vectorised_grid(tmp_path, variants: str, seeds: int):
  """An anakin Catch grid trained together with `--vectorise`: the
  finished process."""
  args = [sys.executable, "-m", "impala_tf.ablate", "--suite=catch",
          f"--variants={variants}", "--replay=off", f"--seeds={seeds}",
          "--total_frames=10240", f"--output={tmp_path}",
          "--run_mode=anakin", "--together", "--vectorise"]
  return subprocess.run(args, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_seeds_of_an_anakin_grid_train_vectorised_in_one_program(tmp_path):
  done = _vectorised_grid(tmp_path, "vtrace", seeds=2)
  assert done.returncode == 0, done.stdout + done.stderr
  output = (tmp_path / "together" / "output.log").read_text()
  assert "2 agents in one compiled program, vectorised" in output, output
  rows = list(csv.DictReader((tmp_path / "table.csv").open()))
  assert len(rows) == 1 and rows[0]["runs"] == "2"
  for seed in (0, 1):
    run = tmp_path / "catch" / f"replay_off-lag_none-vtrace-seed_{seed}"
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["num_frames"] == 10_240


def test_vectorise_refuses_a_grid_whose_runs_differ_in_more_than_a_seed(
    tmp_path):
  done = _vectorised_grid(tmp_path, "vtrace,none", seeds=1)
  assert done.returncode == 2, done.stdout + done.stderr
  assert ("--vectorise: Vectorised agents differ only in their seed; these "
          "runs also differ in correction") in done.stderr, done.stderr
  assert not list(tmp_path.glob("catch/*/result.json"))
