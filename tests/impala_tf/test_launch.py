"""`python -m impala_tf.launch` in real processes: learning, faults, signals,
isolation and bad input."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from impala_tf.runtime import isolation
from impala_tf.runtime import server as server_lib
from impala_tf.testing.launches import Launch
from impala_tf.testing.launches import cmdline as _cmdline
from impala_tf.testing.launches import processes_mentioning as _processes_mentioning


def _run_cli(tmp_path, *flags, timeout_s=120):
  return subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", *flags], cwd=tmp_path,
      capture_output=True, text=True, timeout=timeout_s)


def _parent(pid: int) -> int:
  with open(f"/proc/{pid}/stat") as f:
    return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
@pytest.mark.parametrize("sig,fork", [(signal.SIGTERM, True),
                                      (signal.SIGINT, True),
                                      (signal.SIGTERM, False)])
def test_signal_stops_every_process_and_port_is_private(tmp_path, sig, fork):
  launch = Launch(tmp_path, "--suite=catch", "--num_actors=2",
                  "--total_frames=100000000", f"--fork_children={fork}")
  try:
    port = int(launch.wait_for(r"TF server on port (\d+)",
                               timeout_s=150).group(1))
    launch.wait_for(r"Actor 1: connected", timeout_s=150)
    children = _processes_mentioning(launch.logdir)
    assert len(children) >= 3  # launcher(s), learner, two actors
    roles = [p for p in children if "--job=" in " ".join(_cmdline(p))]
    templates = [p for p in children
                 if "impala_tf.runtime.template" in _cmdline(p)]
    assert len(roles) == 3, [_cmdline(p) for p in children]
    if fork:
      # The learner and actors are forked from the one template.
      assert len(templates) == 1
      assert [_parent(p) for p in roles] == templates * 3
    else:
      assert templates == []
    if isolation.private_network_available():
      # The learner runs in its own network namespace: from here, outside
      # it, nothing listens on that port.
      with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    else:
      assert f"port {port} listens on all interfaces" in launch.output
    launch.proc.send_signal(sig)
    launch.proc.wait(timeout=15)
    deadline = time.monotonic() + 5
    while _processes_mentioning(launch.logdir) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert _processes_mentioning(launch.logdir) == [], launch.output
  finally:
    launch.kill_everything()


@pytest.mark.parametrize("flags,message", [
    (["--suite=procgen"], "Unknown suite 'procgen'; expected one of atari57"),
    (["--suite=catch", "--seed=-1"], "--seed=-1"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(tmp_path, flags,
                                                         message):
  # The format as users see it; what each bad input says is tested
  # in-process (tests/impala_tf/test_plan.py).
  result = _run_cli(tmp_path, *flags)
  assert result.returncode == 2, result.stderr
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith("impala_tf.launch: error: ") and message in line, (
      result.stderr)
  assert "Traceback" not in result.stderr + result.stdout
  # Nothing started: no run directory.
  assert not (tmp_path / "runs").exists()


def test_a_run_directory_on_a_read_only_filesystem_is_one_clear_error(
    tmp_path):
  if subprocess.run(["unshare", "--mount", "--map-root-user", "true"],
                    capture_output=True).returncode != 0:
    pytest.skip("this machine forbids user and mount namespaces, so no "
                "read-only mount can be made")
  readonly = tmp_path / "readonly"
  readonly.mkdir()
  script = (f'mount --bind {readonly} {readonly} && '
            f'mount -o remount,bind,ro {readonly} && exec "$@"')
  result = subprocess.run(
      ["unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh",
       sys.executable, "-m", "impala_tf.launch", "--suite=catch",
       f"--logdir={readonly}/run"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2, result.stderr
  (line,) = result.stderr.strip().splitlines()
  assert line == (f"impala_tf.launch: error: --logdir {readonly}/run cannot "
                  "be created: Read-only file system.")


def test_unreachable_learner_is_a_clear_error(tmp_path):
  port = server_lib.free_port()
  result = _run_cli(tmp_path, "--suite=catch", "--job=actor",
                    f"--learner_address=127.0.0.1:{port}",
                    "--connect_timeout_s=2")
  assert result.returncode == 2
  assert f"learner at 127.0.0.1:{port} unreachable" in result.stderr
  assert "retrying" in result.stdout
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_actor_whose_learner_dies_stops_with_one_clear_line(tmp_path,
                                                            cpu_hog):
  del cpu_hog  # A busy machine must not change how the loss is named.
  # Cluster mode: no supervisor ends the actor, so it must notice by itself.
  port = server_lib.free_port()
  learner = Launch(tmp_path, "--suite=catch", "--job=learner",
                   f"--port={port}", "--num_actors=1",
                   "--total_frames=100000000")
  actor = Launch(tmp_path, "--suite=catch", "--job=actor",
                 f"--learner_address=127.0.0.1:{port}", "--num_actors=1",
                 "--learner_wait_s=0")  # Exit at once, as before waiting.
  try:
    actor.wait_for(r"Actor 0: connected")
    learner.wait_for(r"^frames [\d,]+ ")  # The actor's unrolls arrive.
    learner.proc.kill()
    learner.proc.wait()
    code = actor.proc.wait(timeout=60)
    actor._reader.join(timeout=5)  # pylint: disable=protected-access
    assert code == 1, actor.output
    assert "Actor 0 lost the learner after" in actor.output
    assert "Traceback" not in actor.output
  finally:
    learner.kill_everything()
    actor.kill_everything()


# TF's C++ log lines (the same test the project's pre-stop check makes).
_TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |oneDNN|cuInit|cudart|"
                          r"absl::InitializeLog")


@pytest.mark.slow
def test_default_run_directory_holds_the_whole_run_and_a_clean_screen(
    tmp_path):
  # The README's first command as a newcomer runs it: no --logdir, and no
  # TF_CPP_MIN_LOG_LEVEL (the test session sets one).
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", "--suite=catch",
       "--num_actors=1", "--total_frames=6400", "--log_interval_s=1"],
      cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
  assert result.returncode == 0, result.stdout + result.stderr
  (run,) = (tmp_path / "runs").iterdir()
  assert re.fullmatch(r"catch-\d{8}-\d{6}", run.name)
  assert (run / "config.json").exists()
  assert (run / "checkpoints" / "checkpoint").exists()
  assert list(run.glob("events.out.tfevents.*"))
  assert (run / "saved_model" / "saved_model.pb").exists()
  record = json.loads((run / "result.json").read_text())
  assert record["status"] == "completed" and record["num_frames"] >= 6400
  assert json.loads((run / "config.json").read_text())["suite"] == "catch"
  # The first screen is the project's own lines, not TF's C++ start-up.
  first = (result.stdout + result.stderr).splitlines()[:25]
  assert not [line for line in first if _TF_LOG_LINE.search(line)], first
  assert not list(tmp_path.glob("*.tmp-*")) and not list(run.glob("*.tmp-*"))


def test_a_run_directory_with_another_torso_is_refused(tmp_path):
  from impala_tf.config import experiment  # pylint: disable=g-import-not-at-top
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  logdir = tmp_path / "run"
  run_dir.save_config(str(logdir), experiment.build("catch"))
  saved = (logdir / "config.json").read_text()
  result = _run_cli(tmp_path, "--suite=catch", "--torso=deep",
                    f"--logdir={logdir}")
  assert result.returncode == 2
  (line,) = result.stderr.strip().splitlines()
  assert "different network or suite" in line
  assert "torso: shallow → deep" in line
  assert "Traceback" not in result.stderr + result.stdout
  assert (logdir / "config.json").read_text() == saved  # Untouched.


@pytest.mark.slow
def test_a_failing_batch_stager_ends_the_run_with_one_line(tmp_path):
  env = dict(os.environ, IMPALA_TF_FAULTS="stager")
  launch = Launch(tmp_path, "--suite=catch", "--run_mode=threads",
                  "--num_actors=1", env=env)
  code = launch.finish(timeout_s=180)
  assert code == 1, launch.output
  assert ("impala_tf.launch: error: The learner's batch staging failed: "
          "InjectedFault") in launch.output
  assert "Traceback" not in launch.output
  assert launch.result()["status"] == "failed"


@pytest.mark.slow
def test_sigterm_then_the_same_command_resumes_where_it_stopped(tmp_path):
  flags = ("--suite=catch", "--num_actors=2", "--total_frames=100000",
           "--checkpoint_interval_s=3600")
  first = Launch(tmp_path, *flags)
  try:
    # Train until the policy is good, then stop it as a cluster would.
    first.wait_for(r"return (0\.[8-9]\d|1\.00) ", timeout_s=240)
    first.proc.send_signal(signal.SIGTERM)
    first.finish(timeout_s=60)
  finally:
    first.kill_everything()
  stopped = first.result()
  assert stopped["status"] == "stopped", first.output
  saved_frames = stopped["num_frames"]
  assert 0 < saved_frames < 100000

  second = Launch(tmp_path, *flags)
  code = second.finish(timeout_s=300)
  assert code == 0, second.output
  restored = re.search(r"Restored \S+ckpt-(\d+) at ([\d,]+) frames",
                       second.output)
  assert restored, second.output
  assert int(restored.group(2).replace(",", "")) == saved_frames
  progress = [re.search(r"^frames ([\d,]+) .* return (-?[\d.]+) ", line)
              for line in second.lines]
  progress = [(int(m.group(1).replace(",", "")), float(m.group(2)))
              for m in progress if m and m.group(2) != "nan"]
  # The frame count continues from the checkpoint, and the restored policy
  # plays well from its first episodes: it was stopped at 0.8 or more over
  # 100 episodes, random play scores about -0.6, and the first figure is
  # over some 64 episodes (a standard error near 0.08), so 0.3 is far from
  # both.
  assert progress[0][0] > saved_frames
  assert progress[0][1] >= 0.3, second.output
  final = second.result()
  assert final["status"] == "completed" and final["num_frames"] >= 100000
  # A learner and two actor processes learn Catch, then every process
  # exits (the actor restarts of a run are in the chaos test).
  assert final["mean_return"] >= 0.9
  assert second.output.count("connected to 127.0.0.1:") == 2
  assert _processes_mentioning(second.logdir) == []


@pytest.mark.parametrize("flags,user_env,expected", [
    ((), None, "onednn on in the learner (auto), on (auto) on this CPU in "
     "actors"),
    (("--onednn=off",), None, "onednn off in the learner (flag), off (flag) "
     "in actors"),
    ((), "0", "onednn off in the learner (user), off (user) in actors"),
])
def test_the_learners_first_line_names_the_cpu_and_onednn(tmp_path, flags,
                                                          user_env, expected):
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  env = {k: v for k, v in os.environ.items()
         if k not in (cpu.ONEDNN_ENV, "IMPALA_TF_ONEDNN_CHOSEN",
                      "TF_CPP_MIN_LOG_LEVEL")}
  if user_env is not None:
    env[cpu.ONEDNN_ENV] = user_env
  learner = Launch(tmp_path, "--suite=catch", "--job=learner",
                   f"--port={server_lib.free_port()}", *flags, env=env)
  try:
    line = learner.wait_for(r"^Learner on .*", timeout_s=120).group(0)
  finally:
    learner.kill_everything()
  assert line == (f"Learner on {cpu.read_cpu_info().describe()}; "
                  f"{expected}.")
  assert learner.lines[0] == line  # The first line.


@pytest.mark.slow
def test_a_second_launch_on_a_busy_run_directory_is_refused(tmp_path,
                                                           cpu_hog):
  del cpu_hog
  first = Launch(tmp_path, "--suite=catch", "--num_actors=1",
                 "--total_frames=100000000")
  try:
    first.wait_for(r"^Learner on ", timeout_s=150)
    # Refused at once: the lock is tried once, never waited for (a wait
    # would last as long as the first run, past _run_cli's timeout), and
    # nothing starts (no learner or actor line below).
    second = _run_cli(tmp_path, "--suite=catch", "--num_actors=1",
                      f"--logdir={first.logdir}")
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert f"{first.logdir} is in use by another run (pid {first.proc.pid} " \
        "on " in line, line
    assert "Actor" not in second.stdout and "Learner" not in second.stdout
    assert first.proc.poll() is None  # The first run goes on.
  finally:
    first.kill_everything()
  # Killed without releasing: the next launch takes the stale lock over.
  third = _run_cli(tmp_path, "--suite=catch", "--num_actors=1",
                   "--total_frames=640", f"--logdir={first.logdir}",
                   timeout_s=300)
  assert third.returncode == 0, third.stderr
  assert "Taking over the lock" in third.stdout and "which has ended" in (
      third.stdout)
  assert not os.path.exists(os.path.join(first.logdir, "LOCK"))


@pytest.mark.slow
def test_actors_that_keep_failing_end_the_run_with_their_error(tmp_path,
                                                               cpu_hog):
  del cpu_hog
  env = dict(os.environ, IMPALA_TF_FAULTS="actor")
  launch = Launch(tmp_path, "--suite=catch", "--num_actors=2",
                  "--total_frames=100000000", env=env)
  code = launch.finish(timeout_s=240)
  assert code == 1, launch.output
  assert re.fullmatch(
      r"impala_tf\.launch: error: actors failed 5 times in 5 min with the "
      r"same error, so the run stopped: \S*InjectedFault: fault injected at "
      r"'actor'", launch.lines[-1]), launch.output
  # The learner said why nothing came while they restarted.
  assert re.search(r"waiting for actors: no trajectory for \d+ s; no actor "
                   r"heard from yet; \d actor\(s\) restarting .* last error: "
                   r".*InjectedFault", launch.output), launch.output
  assert launch.result()["status"] == "failed"
  assert "fault injected at 'actor'" in launch.result()["error"]


@pytest.mark.slow
def test_failed_checkpoint_saves_are_one_line_and_the_run_goes_on(tmp_path,
                                                                 cpu_hogs):
  faults_file = tmp_path / "faults"
  env = dict(os.environ, IMPALA_TF_FAULTS_FILE=str(faults_file))
  launch = Launch(tmp_path, "--suite=catch", "--num_actors=2",
                  "--total_frames=60000", "--checkpoint_interval_s=1",
                  env=env)
  try:
    launch.wait_for(r"^frames ", timeout_s=150)
    cpu_hogs()  # From here on a busy machine must not change the outcome.
    faults_file.write_text("checkpoint_write")  # The disk is full...
    launch.wait_for(r"Could not save checkpoint", count=2, timeout_s=60)
    faults_file.write_text("")                   # ... and has room again.
    code = launch.finish(timeout_s=240)
  finally:
    launch.kill_everything()
  assert code == 0, launch.output
  failed = [l for l in launch.lines if "Could not save checkpoint" in l]
  assert re.fullmatch(r"Could not save checkpoint \d+ \(fault injected at "
                      r"'checkpoint_write'\); the newest good checkpoint is "
                      r"\S+ckpt-\d+\. Trying again in 1 s\.", failed[0]), failed
  assert launch.result()["status"] == "completed"
  checkpoints = os.path.join(launch.logdir, "checkpoints")
  assert not [f for f in os.listdir(checkpoints) if "_temp" in f]
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  state = tf.train.get_checkpoint_state(checkpoints)
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)  # Every one readable.
    assert "num_frames/.ATTRIBUTES/VARIABLE_VALUE" in (
        reader.get_variable_to_shape_map())


def test_children_get_the_resolved_logdir_once():
  from impala_tf.roles import local  # pylint: disable=g-import-not-at-top
  args = ["--suite=catch", "--logdir=a", "--logdir", "b", "--logdirx=c"]
  assert local.without_flag(args, "logdir") == ["--suite=catch",
                                                "--logdirx=c"]


# A CPU extension named twice on one line ("AVX-512 AVX-512 VNNI").
_REPEATED_WORD = re.compile(r"\b(AVX-512|AMX) [^;]*\b\1\b")


@pytest.mark.slow
def test_the_first_screen_reads_cleanly(tmp_path):
  # Episodes far longer than the run: no game ends while it trains.
  launch = Launch(tmp_path, "--suite=dm_env",
                  "--env_factory=impala_tf.testing.small_envs:countdown",
                  '--env_kwargs={"length": 1000000}', "--num_actors=1",
                  "--total_frames=20000")
  assert launch.finish(timeout_s=300) == 0, launch.output
  learner = next(l for l in launch.lines if l.startswith("Learner on "))
  assert not _REPEATED_WORD.search(learner), learner
  assert re.search(r"^Learner: TF server on port \d+; dm_env; mlp network;",
                   launch.output, re.MULTILINE), launch.output
  progress = [l for l in launch.lines if l.startswith("frames ")]
  assert progress, launch.output
  for line in progress:
    assert "| no games yet |" in line and "nan" not in line, line
    share = int(re.search(r"learner waits (\d+)%", line).group(1))
    assert share <= 100, line
  assert launch.lines[-1].endswith("dm_env no games yet"), launch.lines[-1]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["completed", "stopped", "diverged"])
def test_a_local_run_ends_with_its_own_reason(tmp_path, ending):
  total = 100_000_000 if ending == "stopped" else 25_600
  flags = ["--suite=catch", "--num_actors=2", f"--total_frames={total}"]
  if ending == "diverged":
    flags.append("--learning_rate=1e3")
  launch = Launch(tmp_path, *flags)
  if ending == "stopped":
    launch.wait_for(r"^frames [\d,]+ ")
    launch.proc.send_signal(signal.SIGTERM)
  code = launch.finish(timeout_s=300)
  last = launch.lines[-1]
  if ending == "completed":
    assert code == 0 and last.startswith("Done: "), launch.output
  elif ending == "stopped":
    assert code == 128 + signal.SIGTERM, launch.output
    assert re.match(r"Stopped at [\d,]+ of 100,000,000 frames after \d+ "
                    r"updates in .*; the same command resumes it; mean "
                    r"return", last), launch.output
  else:
    assert code == 1, launch.output
    assert last.startswith("impala_tf.launch: error: The run diverged: "), (
        launch.output)
  assert launch.result()["status"] == ending
  # The actors were not told to wait for a learner that ended on purpose.
  assert "waiting up to" not in launch.output, launch.output
  assert not [l for l in launch.lines if "lost the learner" in l], (
      launch.output)
