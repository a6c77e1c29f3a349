"""`python -m impala_tf.pbt`: members take turns; a population on Catch
exploits, members joining by hand are seen, and the lineage is drawn."""

import json
import subprocess
import sys
import textwrap

import pytest

from impala_tf.records import curves
from impala_tf.pbt import population
from impala_tf.pbt import store

# A stand-in member: it needs `work` ticks of 0.1 s in all, which survive a
# SIGTERM in its run directory (as a checkpoint would); it records every
# turn it ran and writes result.json like a run.
_STAND_IN = textwrap.dedent("""
    import json, os, signal, sys, time
    logdir, work = sys.argv[1], int(sys.argv[2])
    os.makedirs(logdir, exist_ok=True)
    done_path = os.path.join(logdir, "ticks")
    done = int(open(done_path).read()) if os.path.exists(done_path) else 0
    started = time.time()
    def finish(status, code):
      open(done_path, "w").write(str(done))
      with open(os.path.join(logdir, "turns"), "a") as f:
        f.write(f"{started} {time.time()}\\n")
      json.dump({"status": status}, open(os.path.join(logdir, "result.json"), "w"))
      sys.exit(code)
    signal.signal(signal.SIGTERM, lambda *_: finish("stopped", 143))
    json.dump({"status": "running"}, open(os.path.join(logdir, "result.json"), "w"))
    while done < work:
      time.sleep(0.1)
      done += 1
    finish("completed", 0)
""")


def _stand_ins(tmp_path, work: int, members: int = 3):
  """(population directory, member → command) for stand-in members that
  each need `work` ticks."""
  script = tmp_path / "member.py"
  script.write_text(_STAND_IN)
  pbt_dir = str(tmp_path / "population")
  return pbt_dir, {m: [sys.executable, str(script),
                       store.member_logdir(pbt_dir, m), str(work)]
                   for m in range(members)}


def test_members_take_turns_when_fewer_run_at_once(tmp_path):
  pbt_dir, commands = _stand_ins(tmp_path, work=25)
  lines = []
  final = population.run_members(commands, pbt_dir, concurrent=1, turn_s=1.0,
                                 log=lines.append, poll_s=0.2)
  assert final == {0: "completed", 1: "completed", 2: "completed"}
  turns = []
  for m in range(3):
    member_turns = [tuple(map(float, line.split())) for line in
                    (tmp_path / "population" / f"member-{m}" /
                     "turns").read_text().splitlines()]
    # 2.5 s of work in turns of about 1 s: each member ran several turns.
    assert len(member_turns) >= 2, lines
    turns.extend(member_turns)
  # One at a time: no two turns overlap.
  turns.sort()
  for (_, end), (start, _) in zip(turns, turns[1:]):
    assert start >= end - 0.05
  assert sum("turn over" in line for line in lines) >= 3
  # Run again: everything finished, nothing is started.
  again = []
  population.run_members(commands, pbt_dir, concurrent=1, turn_s=1.0,
                         log=again.append, poll_s=0.2)
  assert again == ["3 of 3 members already finished."]


def test_only_as_many_members_stop_as_are_waiting(tmp_path):
  pbt_dir, commands = _stand_ins(tmp_path, work=15)
  lines = []
  final = population.run_members(commands, pbt_dir, concurrent=2, turn_s=0.8,
                                 log=lines.append, poll_s=0.2)
  assert set(final.values()) == {"completed"}
  # Two run, one waits: each turn change stops one member, never both.
  stops = [i for i, line in enumerate(lines) if "turn over" in line]
  starts = [i for i, line in enumerate(lines) if "started" in line]
  for stop in stops:
    following = [i for i in stops + starts if i > stop]
    assert following and min(following) in starts, lines


def test_a_crashed_member_is_reported_and_not_restarted(tmp_path):
  pbt_dir = str(tmp_path)
  commands = {0: [sys.executable, "-c", "import sys; sys.exit(3)"]}
  lines = []
  final = population.run_members(commands, pbt_dir, concurrent=1,
                                 turn_s=1.0, log=lines.append, poll_s=0.1)
  assert final == {0: "failed"}
  assert "exited with code 3" in lines[-1]


def test_per_member_flags_are_refused(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.pbt", f"--workdir={tmp_path}",
       "--population=2", "--logdir=/elsewhere"],
      capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  (line,) = result.stderr.strip().splitlines()
  assert line == ("impala_tf.pbt: error: --logdir=/elsewhere is set per run by "
                  "the population command (--workdir and --seed set it); "
                  "drop it.")


def _launch(args, timeout=600):
  result = subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result.stdout


@pytest.mark.slow
def test_a_catch_population_copies_a_member_that_joined_by_hand(tmp_path):
  workdir = tmp_path / "population"
  common = ["--suite=catch", "--run_mode=threads", "--num_actors=2",
            "--pbt_initial=config", "--pbt_ready_episodes=300",
            "--log_interval_s=2"]
  # Member 2 joins by hand, as from another host, and learns Catch.
  _launch(["-m", "impala_tf.launch", f"--pbt_dir={workdir}", "--member=2",
           "--total_frames=48000", "--pbt_burn_in_frames=10000",
           *common])
  joined = store.read_member_state(str(workdir), 2)
  assert joined["fitness"] > 0.5  # Random play: about -0.6.
  # A population of 2 started by the command, with a rate that cannot
  # learn in this budget: at its first ready step each member sees only
  # member 2 (the other has no fitness yet, or is as bad), copies it, and
  # acts as well from then on.
  out = _launch(["-m", "impala_tf.pbt", "--population=2", "--concurrent=2",
                 f"--workdir={workdir}", "--learning_rate=1e-7",
                 "--total_frames=16000", "--pbt_burn_in_frames=4000",
                 "--pbt_exploit_threshold=0.5", *common])
  assert "member 0: completed" in out and "member 1: completed" in out
  events = store.read_events(str(workdir))
  for member in (0, 1):
    mine = [e for e in events if e["member"] == member]
    first = mine[0]
    assert first["copied"] and first["fitness"] < 0.0, first
    assert first["opponent_fitness"] > 0.5
    if first["source"] == 2:
      assert first["source_frames"] == joined["fitness_frames"]
    # The copy's hyperparameters, explored once (by 1.2, 1/1.2 or not at
    # all), replaced the flag's 1e-7.
    copied_rate = first["source_hyperparameters"]["learning_rate"]
    assert copied_rate > 1e-4
    assert min(abs(first["hyperparameters_after"]["learning_rate"] /
                   (copied_rate * factor) - 1) for factor in (
                       1 / 1.2, 1.0, 1.2)) < 1e-6, first
    # From the ready step after next on, the episodes are all the copy's.
    later = [e["fitness"] for e in mine[2:]]
    assert later and min(later) > joined["fitness"] - 0.15, mine
    result = json.loads((workdir / f"member-{member}" /
                         "result.json").read_text())
    assert result["status"] == "completed" and result["mean_return"] > 0.5
    # TensorBoard shows the hyperparameters over time: the flag's rate,
    # then the copied one.
    scalars = curves.read_scalars(str(workdir / f"member-{member}"))
    rates = [v for _, v in scalars["learner/learning_rate"]]
    # (Not annealed without --pbt_anneal: the rate logged is the flag's,
    # then the copy's.)
    assert rates[0] < 1e-6 and max(rates) > 1e-3
    for name in ("entropy_cost", "rmsprop_epsilon", "max_grad_norm"):
      assert f"learner/{name}" in scalars
  assert any(e["source"] == 2 for e in events if e["copied"])
  # The command again, over all three: finished, so it only reports and
  # draws the lineage.
  out = _launch(["-m", "impala_tf.pbt", "--population=3",
                 f"--workdir={workdir}", *common], timeout=300)
  assert "3 of 3 members already finished." in out
  assert "Best member:" in out
  assert (workdir / "lineage.png").stat().st_size > 10_000
  _launch(["-m", "impala_tf.plot", f"--pbt={workdir}",
           f"--output={tmp_path / 'again.png'}"], timeout=300)
  assert (tmp_path / "again.png").stat().st_size > 10_000


@pytest.mark.parametrize("flags,message", [
    (["--pbt_dir=DIR"], "--pbt_dir needs --member=<index>"),
    (["--member=1"], "--member needs --pbt_dir"),
])
def test_launch_refuses_half_a_membership(tmp_path, flags, message):
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", "--suite=catch",
       f"--logdir={tmp_path}", *[f.replace("DIR", str(tmp_path))
                                  for f in flags]],
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert message in result.stderr
  assert not list(tmp_path.iterdir())  # Nothing was started or written.
