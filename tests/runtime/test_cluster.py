"""The cluster path across simulated hosts: a learner and actors in network
namespaces of their own (`impala_tf.testing.netns_cluster`), started as
docs/cluster.md says, from TF_CONFIG and from flags (through
launch/start_cluster.sh), through a learner restart and actors that come
and go."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from impala_tf.testing import netns_cluster

REPO = Path(__file__).resolve().parents[2]
LAUNCH = [sys.executable, "-m", "impala_tf.launch"]
# Catch's return reaches 0.9 by about 60,000 frames (docs/results.md).
CATCH_FRAMES = 80_000
PROGRESS = re.compile(r"^frames ([\d,]+) .*\| return (-?[\d.]+|nan) ")


@pytest.fixture
def make_cluster(tmp_path):
  """Makes a `SimulatedCluster` (skips where the machine forbids it) and
  kills everything in it at the end of the test."""
  clusters = []

  def make(hosts, outside=()):
    cluster = netns_cluster.SimulatedCluster(tmp_path, hosts, outside)
    try:
      cluster.start()
    except netns_cluster.NetnsUnavailableError as e:
      pytest.skip(f"no simulated cluster on this machine: {e}")
    clusters.append(cluster)
    return cluster

  yield make
  for cluster in clusters:
    cluster.close()


class Log:
  """A process's output file, read line by line as it grows."""

  def __init__(self, path):
    self.path = Path(path)

  @property
  def lines(self) -> list[str]:
    try:
      return self.path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
      return []

  def wait_for(self, pattern, timeout_s=120.0, count=1, alive=None):
    """The `count`-th line matching `pattern`; fails after `timeout_s` or
    once `alive` (a Popen) has exited without it."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout_s
    while True:
      matches = [m for m in map(regex.search, self.lines) if m]
      if len(matches) >= count:
        return matches[count - 1]
      ended = alive is not None and alive.poll() is not None
      if ended or time.monotonic() > deadline:
        raise AssertionError(
            f"{pattern!r} x{count} not in {self.path.name}"
            f"{' (the process exited)' if ended else ''}:\n"
            + "\n".join(self.lines[-40:]))
      time.sleep(0.2)


def _start(cluster, host, argv, log_path, tf_config=None, cwd=None):
  """Starts `argv` on `host`, its output appended to `log_path`."""
  env = dict(os.environ)
  env.pop("TF_CONFIG", None)
  if tf_config is not None:
    env["TF_CONFIG"] = tf_config
  with open(log_path, "ab") as out:
    return cluster.popen(host, argv, stdout=out, stderr=subprocess.STDOUT,
                         env=env, cwd=cwd)


def _example_tf_config(name: str, learner_address: str, index: int) -> str:
  """A launch/ example TF_CONFIG with the address and index filled in."""
  config = json.loads((REPO / "launch" / name).read_text())
  config["cluster"]["learner"] = [learner_address]
  config["task"]["index"] = index
  return json.dumps(config)


def _progress(lines) -> list[tuple[int, float, int]]:
  """(frames, return, actors heard from) of each progress line."""
  out = []
  for line in lines:
    match = PROGRESS.search(line)
    if match:
      actors = re.search(r"\| actors (\d+) \|", line)
      out.append((int(match.group(1).replace(",", "")),
                  float(match.group(2)), int(actors.group(1)) if actors
                  else 0))
  return out


def _collapsed(values) -> list:
  """`values` without repeats in a row: [2, 2, 1, 2] -> [2, 1, 2]."""
  return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def _start_time(pid: int) -> int:
  """The process's start time (clock ticks since boot): the same pid with
  the same start time is the same process, re-executed or not."""
  with open(f"/proc/{pid}/stat") as f:
    return int(f.read().rsplit(")", 1)[1].split()[19])


def _cmdline(pid: int) -> list[str]:
  with open(f"/proc/{pid}/cmdline", "rb") as f:
    return f.read().decode().split("\0")[:-1]


def _reachable_here(port: int) -> bool:
  """Whether this machine's own loopback reaches `port` (the test process
  is outside every simulated host)."""
  try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    return True
  except OSError:
    return False


def _tensorboard_counter(logdir, name) -> list[float]:
  """The values of TensorBoard scalar `counters/<name>`, in step order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  points = []
  for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag == f"counters/{name}":
          points.append((event.step, float(tf.make_ndarray(value.tensor))))
  return [value for _, value in sorted(points)]


def _listen(cluster, host, port):
  """A TCP server on every interface of `host`, as a TF server listens."""
  server = cluster.popen(host, [
      sys.executable, "-c",
      "import socket, sys\n"
      "s = socket.socket()\n"
      f"s.bind(('0.0.0.0', {port}))\n"
      "s.listen()\n"
      "print('listening', flush=True)\n"
      "sys.stdin.read()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
  assert server.stdout.readline() == "listening\n"
  return server


def test_simulated_hosts_reach_their_own_network_only(make_cluster):
  cluster = make_cluster(["learner", "actor"],
                         outside=["outsider", "neighbour"])
  port = netns_cluster.free_port()
  servers = [_listen(cluster, host, port) for host in ("learner",
                                                       "neighbour")]
  learner, neighbour = cluster.address("learner"), cluster.address("neighbour")
  assert learner.startswith("192.0.2.") and neighbour.startswith("198.51.100.")
  assert cluster.address("actor") not in (learner, neighbour)
  # Each network reaches its own hosts...
  assert cluster.tcp_reachable("actor", learner, port)
  assert cluster.tcp_reachable("outsider", neighbour, port)
  # ...and nothing of the other one, nor does this machine reach either.
  assert not cluster.tcp_reachable("outsider", learner, port)
  assert not cluster.tcp_reachable("actor", neighbour, port)
  assert not _reachable_here(port)
  assert sorted(cluster.processes()) == sorted(s.pid for s in servers)
  for server in servers:
    server.stdin.close()
    assert server.wait(timeout=10) == 0


_UNPRIVILEGED_CHECK = """
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("netns_cluster", sys.argv[1])
nc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nc)
port = int(sys.argv[3])
try:
  cluster = nc.SimulatedCluster(sys.argv[2], ["a", "b"], ["x"]).start()
except nc.NetnsUnavailableError as e:
  print("unavailable", e)
  sys.exit(0)
try:
  server = cluster.popen("a", [sys.executable, "-c", (
      "import socket, sys; s = socket.socket(); "
      f"s.bind(('0.0.0.0', {port})); s.listen(); print('up', flush=True); "
      "sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
  server.stdout.readline()
  print("user namespace", cluster._user_ns is not None,
        "b reaches a", cluster.tcp_reachable("b", cluster.address("a"), port),
        "x reaches a", cluster.tcp_reachable("x", cluster.address("a"), port))
finally:
  cluster.close()
"""


def test_the_simulated_cluster_needs_no_privilege(tmp_path):
  # As an ordinary user (nobody), with a Python that user may run. The
  # module needs only the standard library.
  python = "/usr/bin/python3"
  if os.geteuid() != 0 or not shutil.which("setpriv") or not os.access(
      python, os.X_OK):
    pytest.skip("needs root, setpriv and /usr/bin/python3 to run a check "
                "as an ordinary user")
  result = subprocess.run(
      ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
       python, "-c", _UNPRIVILEGED_CHECK, netns_cluster.__file__,
       str(tmp_path), str(netns_cluster.free_port())],
      cwd=tmp_path, capture_output=True, text=True, timeout=60,
      env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
  assert result.returncode == 0, result.stderr
  if result.stdout.startswith("unavailable"):
    pytest.skip(f"unprivileged user namespaces are not allowed here: "
                f"{result.stdout.strip()}")
  assert result.stdout.split() == [
      "user", "namespace", "True", "b", "reaches", "a", "True", "x",
      "reaches", "a", "False"], result.stdout


def test_a_machine_without_the_tools_is_a_clear_reason(monkeypatch,
                                                       tmp_path):
  monkeypatch.setattr(netns_cluster.shutil, "which", lambda name: None)
  monkeypatch.setattr(netns_cluster.os, "access", lambda path, mode: False)
  cluster = netns_cluster.SimulatedCluster(tmp_path, ["a"])
  with pytest.raises(netns_cluster.NetnsUnavailableError,
                     match=r"needs the 'unshare' command \(util-linux\), "
                     "which is not installed"):
    cluster.start()


def test_an_actor_whose_learner_stays_away_stops_after_learner_wait_s(
    tmp_path):
  # The actor's process image after a learner went away (what
  # `--learner_wait_s` re-executes): nothing listens at the address.
  port = netns_cluster.free_port()
  env = dict(os.environ, IMPALA_TF_LEARNER_LOST_AT=repr(time.time()))
  start = time.monotonic()
  result = subprocess.run(
      LAUNCH + ["--suite=catch", "--job=actor", "--task=3",
                f"--learner_address=127.0.0.1:{port}", "--learner_wait_s=8"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1, result.stdout + result.stderr
  (line,) = result.stderr.strip().splitlines()
  # Unreachable, or (on a slow machine) the wait was over before the
  # process started up.
  assert line.startswith(
      f"impala_tf.launch: error: Actor 3: the learner at 127.0.0.1:{port} "
      "did not come back within --learner_wait_s=8 s (") and line.endswith(
          "; stopping."), line
  # Waiting is quiet: the line that the learner went away was the outage's.
  assert "retrying" not in result.stdout, result.stdout
  assert time.monotonic() - start >= 8


@pytest.mark.slow
@pytest.mark.parametrize("inference", ["actor", "central"])
def test_catch_from_tf_config_across_hosts_while_actors_come_and_go(
    make_cluster, tmp_path, inference):
  # Central: the policy acts on the learner's inference server (its port
  # the TF server's + 1); the actor killed below dies mid-request.
  cluster = make_cluster(["learner", "host_b", "host_c"],
                         outside=["outsider"])
  port = netns_cluster.free_port()
  learner_address = f"{cluster.address('learner')}:{port}"
  logdir = tmp_path / "run"
  flags = ["--suite=catch", "--total_frames=150000", "--log_interval_s=1",
           f"--inference={inference}"]
  # As docs/cluster.md says: the same flags, the role from TF_CONFIG.
  learner_log = Log(tmp_path / "learner.log")
  learner = _start(cluster, "learner",
                   LAUNCH + flags + ["--num_actors=2", f"--logdir={logdir}"],
                   learner_log.path, _example_tf_config(
                       "tf_config_learner.json", learner_address, 0))
  actors, logs = {}, {}

  def start_actor(index, host):
    logs[index] = Log(tmp_path / f"actor_{index}.log")
    actors[index] = _start(cluster, host, LAUNCH + flags, logs[index].path,
                           _example_tf_config("tf_config_actor.json",
                                              learner_address, index))

  if inference == "central":
    # The inference server's process, on the learner's host.
    server_log = Log(tmp_path / "inference.log")
    server = _start(cluster, "learner", LAUNCH + flags, server_log.path,
                    json.dumps({"cluster": {"learner": [learner_address]},
                                "task": {"type": "inference", "index": 0}}))
  start_actor(0, "host_b")
  start_actor(1, "host_c")
  learner_log.wait_for(r"hearing from 2 actor\(s\)\.$", timeout_s=180,
                       alive=learner)
  # The learner's port: reached from the cluster's hosts (the actors
  # train), not from a host outside its network nor from this machine.
  ports = [port, port + 1] if inference == "central" else [port]
  for open_port in ports:
    assert not cluster.tcp_reachable("outsider", cluster.address("learner"),
                                     open_port)
    assert not _reachable_here(open_port)
  if inference == "central":
    server_log.wait_for(rf"^Inference: serving on port {port + 1} for the "
                        rf"learner at {re.escape(learner_address)}:")

  actors[1].send_signal(signal.SIGKILL)
  assert actors[1].wait(timeout=10) == -signal.SIGKILL
  learner_log.wait_for(r"^Actors fell silent: 1; hearing from 1 actor\(s\)\.$",
                       timeout_s=60, alive=learner)
  start_actor(2, "host_c")
  learner_log.wait_for(r"^Actors joined: 2; hearing from 2 actor\(s\)\.$",
                       timeout_s=120, alive=learner)
  assert learner.wait(timeout=240) == 0, "\n".join(learner_log.lines[-30:])
  for index in (0, 2):
    assert actors[index].wait(timeout=60) == 0, logs[index].lines
    assert logs[index].lines[-1].startswith(f"Actor {index}: sent ")

  # One learner all along: started once, never restored.
  lines = learner_log.lines
  assert sum("TF server on port" in line for line in lines) == 1
  assert not any(line.startswith("Restored ") for line in lines)
  progress = _progress(lines)
  frames = [f for f, _, _ in progress]
  assert frames == sorted(frames)
  # The count followed the actors: two, one after the kill, two again.
  assert _collapsed([a for _, _, a in progress])[-3:] == [2, 1, 2], lines
  assert _collapsed(_tensorboard_counter(logdir, "actors"))[-3:] == [2, 1, 2]
  record = json.loads((logdir / "result.json").read_text())
  assert record["status"] == "completed" and record["num_frames"] >= 150000
  assert record["mean_return"] >= 0.9, lines[-5:]
  if inference == "central":
    assert "(central inference); stopping." in logs[0].lines[-1]
    assert server.wait(timeout=60) == 0, server_log.lines[-10:]
    server_log.wait_for(r"^Inference: [\d,]+ batches .* in the whole run")


@pytest.mark.slow
def test_start_cluster_sh_runs_catch_through_a_learner_restart(make_cluster,
                                                              tmp_path):
  cluster = make_cluster(["learner", "host_b", "host_c"])
  hosts_file = tmp_path / "hosts"
  hosts_file.write_text("# learner first, then the actor hosts\n" + "".join(
      f"{cluster.address(h)}\n" for h in ("learner", "host_b", "host_c")))
  port = netns_cluster.free_port()
  logs = tmp_path / "logs"
  # PYTHON through a recorder of how each process ended (the processes are
  # started with nohup on their hosts: no test process is their parent).
  exits = tmp_path / "exits"
  recorder = tmp_path / "python"
  recorder.write_text(
      "#!/bin/sh\n"
      f"{shlex.quote(sys.executable)} \"$@\"\n"
      "code=$?\n"
      f"echo \"$code $*\" >> {shlex.quote(str(exits))}\n"
      "exit $code\n")
  recorder.chmod(0o755)
  env = dict(os.environ, IMPALA_TF_REMOTE=cluster.write_remote(
      tmp_path / "ssh"), PORT=str(port), ACTORS_PER_HOST="1",
             PYTHON=str(recorder), LOGDIR=str(logs))
  started = subprocess.run(
      ["bash", str(REPO / "launch" / "start_cluster.sh"), str(hosts_file),
       "--suite=catch", f"--total_frames={CATCH_FRAMES}",
       "--log_interval_s=1", "--checkpoint_interval_s=2"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
  assert started.returncode == 0, started.stderr
  learner_host = cluster.address("learner")
  assert started.stdout.strip().startswith(
      f"learner on {learner_host}:{port}, 2 actors; logs in ")

  def launched(*words):
    """The pid of the impala_tf.launch process with all `words`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
      pids = [pid for pid in cluster.processes()
              if _cmdline(pid)[1:3] == ["-m", "impala_tf.launch"] and all(
                  w in _cmdline(pid) for w in words)]
      if pids:
        (pid,) = pids
        return pid
      time.sleep(0.2)
    raise AssertionError(f"no process with {words} on the cluster")

  learner = launched("--job=learner")
  actors = {i: launched("--job=actor", f"--task={i}") for i in (0, 1)}
  started_at = {pid: _start_time(pid) for pid in actors.values()}
  learner_log = Log(logs / "learner.log")
  # Mid-run, with a checkpoint behind it: SIGKILL, no cleanup at all.
  checkpoint_file = logs / "learner" / "checkpoints" / "checkpoint"
  learner_log.wait_for(r"^frames [1-9]\d,\d{3} ", timeout_s=180)
  deadline = time.monotonic() + 30
  while not checkpoint_file.exists():
    assert time.monotonic() < deadline, "no checkpoint after 30 s"
    time.sleep(0.2)
  command, cwd = _cmdline(learner), os.readlink(f"/proc/{learner}/cwd")
  os.kill(learner, signal.SIGKILL)
  newest = re.search(r'^model_checkpoint_path: "(.+)"$',
                     checkpoint_file.read_text(), re.M).group(1)
  actor_logs = {i: Log(logs / f"actor_{i}.log") for i in actors}
  for i, log in actor_logs.items():
    log.wait_for(rf"^Actor {i} lost the learner after \d+ unrolls \(.*\); "
                 rf"waiting up to 600 s for it to come back at "
                 rf"{learner_host}:{port}\.$", timeout_s=60)

  # The same command on the same host, as a user (or a restart policy)
  # would run it again.
  restarted_log = Log(logs / "learner-restarted.log")
  restarted = _start(cluster, "learner", command, restarted_log.path,
                     cwd=cwd)
  for i, log in actor_logs.items():
    log.wait_for(rf"^Actor {i}: reconnected to {learner_host}:{port} after",
                 timeout_s=120, alive=restarted)
    # The same process (pid and start time), re-executed in place.
    assert _start_time(actors[i]) == started_at[actors[i]]
    assert f"--task={i}" in _cmdline(actors[i])
  assert restarted.wait(timeout=300) == 0, restarted_log.lines[-30:]

  lines = restarted_log.lines
  restored = re.search(r"^Restored (\S+) at ([\d,]+) frames", "\n".join(lines),
                       re.M)
  assert restored, lines
  assert os.path.basename(restored.group(1)) == os.path.basename(newest)
  restored_frames = int(restored.group(2).replace(",", ""))
  progress = _progress(lines)
  assert restored_frames > 0 and progress[0][0] > restored_frames
  assert progress[-1][2] == 2  # Both actors feed the restarted learner.
  record = json.loads((logs / "learner" / "result.json").read_text())
  assert record["status"] == "completed"
  assert record["num_frames"] >= CATCH_FRAMES
  assert record["mean_return"] >= 0.9, lines[-5:]

  # The same actor processes reconnected (one line each per outage) and
  # fed it; nothing restarted them.
  for i, log in actor_logs.items():
    text = log.lines
    assert sum("lost the learner" in line for line in text) == 1, text
    assert sum(f"Actor {i}: reconnected to {learner_host}:{port} after"
               in line for line in text) == 1, text
    assert not any("retrying" in line for line in text), text
    assert text[-1].startswith(f"Actor {i}: sent ")
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline and len(
      exits.read_text().splitlines()) < 3:
    time.sleep(0.2)
  ended = exits.read_text().splitlines()
  codes = {("learner" if "--job=learner" in line else
            re.search(r"--task=(\d+)", line).group(1)): int(line.split()[0])
           for line in ended}
  # One exit per process started: the killed learner, and each actor once.
  assert len(ended) == 3 and codes == {"learner": 128 + signal.SIGKILL,
                                       "0": 0, "1": 0}, ended
  assert cluster.processes() == []
