"""Roles the runtime tests run as real processes: a learner driven by JSON
commands on stdin, actors that enqueue recognisable trajectories, and a reader
of published weights. Also the helpers the tests use to drive them.

Run as ``python -m impala_tf.testing.runtime_roles ROLE ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue as pyqueue
import signal
import subprocess
import sys
import threading
import time

import numpy as np

FRAME_HW_C = (84, 84, 4)
WEIGHT_VERSION_BASE = 2**40 + 12345  # Versions must stay exact past 2**24.
# Both int32 halves of this version are float32 NaN bit patterns (signalling
# and quiet): bitcast storage must carry them bit for bit.
NAN_BITS_VERSION = (0x7F800001 << 32) | 0x7FC00001


def trajectory_specs(steps: int):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {
      "frame": tf.TensorSpec([steps, *FRAME_HW_C], tf.uint8),
      "reward": tf.TensorSpec([steps], tf.float32),
      "done": tf.TensorSpec([steps], tf.bool),
      "actor_id": tf.TensorSpec([], tf.int32),
      "seq": tf.TensorSpec([], tf.int64),
      "policy_version": tf.TensorSpec([], tf.int64),
  }


_BASE_CACHE: dict[int, np.ndarray] = {}


def trajectory(actor_id: int, seq: int, steps: int) -> dict[str, np.ndarray]:
  """A trajectory whose every field is determined by (actor_id, seq)."""
  size = steps * int(np.prod(FRAME_HW_C))
  if size not in _BASE_CACHE:
    _BASE_CACHE[size] = np.arange(size, dtype=np.uint64)
  base = _BASE_CACHE[size]
  frame = ((base * np.uint64(2 * seq + 1) + np.uint64(17 * actor_id + 3))
           % np.uint64(251)).astype(np.uint8).reshape(steps, *FRAME_HW_C)
  return {
      "frame": frame,
      "reward": (seq + np.arange(steps)).astype(np.float32),
      "done": (np.arange(steps) + seq) % 3 == 0,
      "actor_id": np.int32(actor_id),
      "seq": np.int64(seq),
      "policy_version": np.int64(2**40 + seq),
  }


def intact(item: dict[str, np.ndarray]) -> bool:
  """Whether a dequeued item equals the trajectory its id fields name."""
  steps = item["frame"].shape[0]
  expected = trajectory(int(item["actor_id"]), int(item["seq"]), steps)
  return all(np.array_equal(item[k], v) for k, v in expected.items())


def weights_for(version: int, n: int) -> np.ndarray:
  return np.full([n], float(version % 2**20), np.float32)


# --------------------------------------------------------------------- roles

def _quiet_tf():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _emit(obj):
  sys.stdout.write(json.dumps(obj) + "\n")
  sys.stdout.flush()


def run_learner(args):
  _quiet_tf()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import queue as rqueue  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server, weights  # pylint: disable=g-import-not-at-top

  srv = server.LearnerServer.start(args.port)
  queues, buffers, publishers, dequeue_fns = {}, {}, {}, {}
  _emit({"ready": srv.address, "device": srv.device})
  for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["cmd"]
    if op == "create_queue":
      queues[cmd["name"]] = rqueue.TrajectoryQueue.create(
          trajectory_specs(cmd["steps"]), cmd["capacity"], srv.device,
          shared_name=cmd["name"], slack=cmd.get("slack", 256))
      _emit({"ok": True})
    elif op == "dequeue":
      q = queues[cmd["name"]]
      if cmd.get("in_function"):
        key = (cmd["name"], cmd["n"])
        if key not in dequeue_fns:
          dequeue_fns[key] = tf.function(lambda q=q, n=cmd["n"]: q.dequeue_many(n))
        batch = dequeue_fns[key]()
      else:
        batch = q.dequeue_many(cmd["n"])
      batch = {k: v.numpy() for k, v in batch.items()}
      items = []
      for i in range(cmd["n"]):
        item = {k: v[i] for k, v in batch.items()}
        items.append([int(item["actor_id"]), int(item["seq"]), intact(item)])
      _emit({"items": items, "shape": list(batch["frame"].shape)})
    elif op == "size":
      _emit({"size": queues[cmd["name"]].size()})
    elif op == "close":
      queues[cmd["name"]].close()
      _emit({"ok": True})
    elif op == "create_weights":
      buffers[cmd["name"]] = weights.WeightBuffer.create(
          cmd["n"], srv.device, shared_name=cmd["name"])
      _emit({"ok": True})
    elif op == "publish":
      buf = buffers[cmd["name"]]
      buf.publish(weights_for(cmd["version"], buf.num_elements), cmd["version"])
      _emit({"ok": True})
    elif op == "publish_loop":
      # Publishes consecutive versions from a tf.function, as the learner's
      # update step will, until told to stop.
      buf = buffers[cmd["name"]]
      stop = threading.Event()

      @tf.function
      def publish(version):
        fill = tf.cast(version % 2**20, tf.float32)
        buf.publish(tf.fill([buf.num_elements], fill), version)

      def loop(start=cmd["start"]):
        v = start
        while not stop.is_set():
          publish(tf.constant(v, tf.int64))
          v += 1
        publishers[cmd["name"]] = (stop, v)

      thread = threading.Thread(target=loop, daemon=True)
      publishers[cmd["name"]] = (stop, thread)
      thread.start()
      _emit({"ok": True})
    elif op == "stop_publish":
      stop, thread = publishers[cmd["name"]]
      stop.set()
      thread.join()
      _emit({"last_version": publishers[cmd["name"]][1] - 1})
    elif op == "quit":
      _emit({"ok": True})
      return
    else:
      _emit({"error": f"unknown command {op}"})


def run_actor(args):
  _quiet_tf()
  from impala_tf.runtime import queue as rqueue  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server  # pylint: disable=g-import-not-at-top

  if args.wait_for_go:
    # Started early (TF imported) so a test need not wait for start-up.
    _emit({"waiting": True})
    sys.stdin.readline()
  device = server.connect_to_learner(args.address, timeout_s=30)
  q = rqueue.TrajectoryQueue.attach(
      trajectory_specs(args.steps), device, shared_name=args.queue)
  _emit({"attached": True})
  seq = 0
  while args.count < 0 or seq < args.count:
    if args.batch > 1:
      k = args.batch if args.count < 0 else min(args.batch, args.count - seq)
      items = [trajectory(args.actor_id, seq + i, args.steps) for i in range(k)]
      try:
        q.enqueue_many({n: np.stack([it[n] for it in items]) for n in items[0]})
      except rqueue.QueueClosedError:
        break
      seq += k
    else:
      try:
        q.enqueue(trajectory(args.actor_id, seq, args.steps))
      except rqueue.QueueClosedError:
        break
      seq += 1
    _emit({"enqueued": seq})
  _emit({"done": seq})


def run_reader(args):
  _quiet_tf()
  from impala_tf.runtime import server, weights  # pylint: disable=g-import-not-at-top

  device = server.connect_to_learner(args.address, timeout_s=30)
  buf = weights.WeightBuffer.attach(args.n, device, shared_name=args.name)
  versions, torn, seconds = [], 0, []
  for _ in range(args.reads):
    t = time.perf_counter()
    flat, version = buf.read()
    seconds.append(time.perf_counter() - t)
    versions.append(version)
    if not np.array_equal(flat, weights_for(version, args.n)):
      torn += 1
  _emit({"versions": versions, "torn": torn,
         "median_read_s": float(np.median(seconds))})


_SLEEPER = "import time; time.sleep(120)"
_STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
             " print('stubborn ready', flush=True); time.sleep(120)")


def run_supervisor(args):
  """A launcher-like supervisor: a main child, a restartable worker and a
  child that ignores SIGTERM. Reports pids as JSON lines."""
  from impala_tf.runtime import processes  # pylint: disable=g-import-not-at-top

  def report(message=""):
    _emit({"log": message, "pids": {n: sup.pid(n) for n in names}})

  sup = processes.Supervisor(grace_s=args.grace, restart_backoff_s=0.2,
                             log=report, logdir=args.logdir)
  main_code = (f"import time; time.sleep({args.main_exits_after}); "
               "raise SystemExit(3)") if args.main_exits_after else _SLEEPER
  names = ["main", "worker", "stubborn"]
  sup.start("main", [sys.executable, "-c", main_code])
  sup.start("worker", [sys.executable, "-c", _SLEEPER], restart=True)
  sup.start("stubborn", [sys.executable, "-c", _STUBBORN])
  report("started")
  result = sup.run_until("main", poll_interval_s=0.05)
  _emit({"result": [result.returncode, result.signal]})


# ------------------------------------------------------------ test helpers

class Proc:
  """A child process speaking JSON lines on stdout, read with deadlines."""

  def __init__(self, *role_args: str, stdin: bool = False):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    self.popen = subprocess.Popen(
        [sys.executable, "-m", "impala_tf.testing.runtime_roles", *role_args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE, text=True, env=env)
    self._lines: pyqueue.Queue = pyqueue.Queue()
    threading.Thread(target=self._pump, daemon=True).start()

  def _pump(self):
    for line in self.popen.stdout:
      self._lines.put(line)
    self._lines.put(None)

  def read(self, timeout_s: float = 60.0) -> dict:
    """The next JSON line; fails the test on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while True:
      try:
        line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
      except pyqueue.Empty:
        raise AssertionError(
            f"no output from {self.popen.args[2:]} in {timeout_s}s") from None
      if line is None:
        raise AssertionError(
            f"{self.popen.args[2:]} exited with {self.popen.wait()}")
      if line.startswith("{"):
        return json.loads(line)

  def drain(self) -> list[dict]:
    """The JSON lines already printed, without waiting."""
    out = []
    while True:
      try:
        line = self._lines.get_nowait()
      except pyqueue.Empty:
        return out
      if line is None:
        self._lines.put(None)
        return out
      if line.startswith("{"):
        out.append(json.loads(line))

  def read_until(self, key: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
      msg = self.read(max(deadline - time.monotonic(), 0.01))
      if key in msg:
        return msg

  def send(self, **cmd) -> None:
    self.popen.stdin.write(json.dumps(cmd) + "\n")
    self.popen.stdin.flush()

  def call(self, timeout_s: float = 60.0, **cmd) -> dict:
    self.send(**cmd)
    return self.read(timeout_s)

  def kill(self):
    if self.popen.poll() is None:
      self.popen.send_signal(signal.SIGKILL)
    self.popen.wait()


def main():
  parser = argparse.ArgumentParser()
  sub = parser.add_subparsers(dest="role", required=True)
  p = sub.add_parser("learner")
  p.add_argument("--port", type=int, required=True)
  p = sub.add_parser("actor")
  p.add_argument("--address", required=True)
  p.add_argument("--queue", default="trajectories")
  p.add_argument("--actor-id", type=int, required=True)
  p.add_argument("--count", type=int, default=-1, help="-1: until closed")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--batch", type=int, default=1)
  p.add_argument("--wait-for-go", action="store_true",
                 help="connect only after a line on stdin")
  p = sub.add_parser("reader")
  p.add_argument("--address", required=True)
  p.add_argument("--name", default="weights")
  p.add_argument("--n", type=int, required=True)
  p.add_argument("--reads", type=int, default=1)
  p = sub.add_parser("supervisor")
  p.add_argument("--grace", type=float, default=2.0)
  p.add_argument("--main-exits-after", type=float, default=0.0)
  p.add_argument("--logdir", default=None)
  args = parser.parse_args()
  {"learner": run_learner, "actor": run_actor, "reader": run_reader,
   "supervisor": run_supervisor}[args.role](args)


if __name__ == "__main__":
  main()
