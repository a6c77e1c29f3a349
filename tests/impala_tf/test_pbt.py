"""`python -m impala_tf.pbt`: members take turns; a population on Catch
exploits, members joining by hand are seen, and the lineage is drawn."""

import json
import subprocess
import sys
import textwrap

import pytest

from impala_tf import plot
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


def test_members_take_turns_when_fewer_run_at_once(tmp_path):
  script = tmp_path / "member.py"
  script.write_text(_STAND_IN)
  pbt_dir = str(tmp_path / "population")
  commands = {m: [sys.executable, str(script),
                  store.member_logdir(pbt_dir, m), "25"] for m in range(3)}
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
  assert "--logdir=/elsewhere is set per member" in result.stderr


def _launch(args, timeout=600):
  result = subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result.stdout


@pytest.mark.slow
def test_a_catch_population_exploits_and_a_member_joins_by_hand(tmp_path):
  workdir = tmp_path / "population"
  common = ["--suite=catch", "--run_mode=threads", "--num_actors=2",
            "--pbt_initial=config", "--pbt_ready_episodes=300",
            "--log_interval_s=2"]
  # Member 0, started by the population command, learns Catch.
  out = _launch(["-m", "impala_tf.pbt", "--population=1",
                 f"--workdir={workdir}", "--total_frames=40000",
                 "--pbt_burn_in_frames=10000", *common])
  assert "member 0: completed" in out
  source = store.read_member_state(str(workdir), 0)
  assert source["fitness"] > 0.8
  # Member 1 joins from another process with a rate that cannot learn in
  # this budget; it sees member 0, copies it, and acts as well from then on.
  out = _launch(["-m", "impala_tf.launch", f"--pbt_dir={workdir}",
                 "--member=1", "--seed=1", "--learning_rate=1e-7",
                 "--total_frames=16000", "--pbt_burn_in_frames=4000",
                 "--pbt_exploit_threshold=0.5", *common])
  events = store.read_events(str(workdir))
  joined = [e for e in events if e["member"] == 1]
  assert joined[0]["opponent"] == 0 and joined[0]["copied"]
  assert joined[0]["fitness"] < 0.0  # Random play before the copy.
  assert joined[0]["source_frames"] == source["fitness_frames"]
  # The copy's hyperparameters, explored once, replaced the flag's 1e-7.
  assert joined[0]["hyperparameters_after"]["learning_rate"] > 5e-3
  # From the ready step after next on, the episodes are all the copy's.
  later = [e["fitness"] for e in joined[2:]]
  assert later and min(later) > source["fitness"] - 0.15, joined
  # TensorBoard shows the hyperparameters over time: the flag's rate, then
  # the copied one.
  rates = [v for _, v in plot.read_scalars(str(workdir / "member-1"))[
      "learner/learning_rate"]]
  assert rates[0] < 1e-6 and rates[-1] > 1e-3
  result = json.loads((workdir / "member-1" / "result.json").read_text())
  assert result["status"] == "completed" and result["mean_return"] > 0.8
  # The population command again: both finished, so it only reports and
  # draws the lineage.
  out = _launch(["-m", "impala_tf.pbt", "--population=2",
                 f"--workdir={workdir}", *common], timeout=300)
  assert "2 of 2 members already finished." in out
  assert "Best member:" in out
  assert (workdir / "lineage.png").stat().st_size > 10_000
  out = _launch(["-m", "impala_tf.plot", f"--pbt={workdir}",
                 f"--output={tmp_path / 'again.png'}"], timeout=300)
  assert (tmp_path / "again.png").exists()


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
