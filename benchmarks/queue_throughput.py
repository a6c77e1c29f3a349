"""Throughput of the learner-hosted trajectory queue and latency of a weight read.

Starts a learner (this process) and actor processes on loopback. Each actor
enqueues Atari-sized trajectories (T+1 = 21 frames of 84x84x4 uint8, plus the
small fields) as fast as it can; the learner dequeues batches of 32 and counts
what arrives over a fixed window after a warm-up. Then one actor process times
reads of a published weight buffer of 1.2M floats (the shallow network's size)
against a trivial remote op (one round trip).

    python benchmarks/queue_throughput.py [--actors 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

STEPS = 21
FRAME = (84, 84, 4)
NUM_ACTIONS = 6
WEIGHTS = 1_200_000


def specs():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {
      "frame": tf.TensorSpec([STEPS, *FRAME], tf.uint8),
      "reward": tf.TensorSpec([STEPS], tf.float32),
      "done": tf.TensorSpec([STEPS], tf.bool),
      "prev_action": tf.TensorSpec([STEPS], tf.int32),
      "behaviour_logits": tf.TensorSpec([STEPS, NUM_ACTIONS], tf.float32),
      "level_id": tf.TensorSpec([], tf.int32),
      "policy_version": tf.TensorSpec([], tf.int64),
  }


def trajectory_bytes() -> int:
  return sum(s.shape.num_elements() * s.dtype.size for s in specs().values())


def run_actor(address: str, seed: int):
  from impala_tf.runtime import queue, server  # pylint: disable=g-import-not-at-top
  device = server.connect_to_learner(address, timeout_s=60)
  q = queue.TrajectoryQueue.attach(specs(), device)
  rng = np.random.default_rng(seed)
  # A few distinct trajectories, cycled: generating 600 kB of random frames
  # per item would measure numpy, not the queue.
  pool = [{
      "frame": rng.integers(0, 256, [STEPS, *FRAME], np.uint8),
      "reward": rng.standard_normal(STEPS).astype(np.float32),
      "done": rng.random(STEPS) < 0.01,
      "prev_action": rng.integers(0, NUM_ACTIONS, STEPS).astype(np.int32),
      "behaviour_logits": rng.standard_normal(
          [STEPS, NUM_ACTIONS]).astype(np.float32),
      "level_id": np.int32(0),
      "policy_version": np.int64(i),
  } for i in range(4)]
  i = 0
  while True:
    try:
      q.enqueue(pool[i % len(pool)])
    except queue.QueueClosedError:
      return
    i += 1


def run_reader(address: str, reads: int):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server, weights  # pylint: disable=g-import-not-at-top
  device = server.connect_to_learner(address, timeout_s=60)
  buf = weights.WeightBuffer.attach(WEIGHTS, device)
  buf.read()  # Traces the read function.

  def timed(fn):
    times = []
    for _ in range(reads):
      t = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3

  def trivial():
    with tf.device(device):
      return int(tf.constant(1) + 1)

  @tf.function
  def read_in_function():
    # The alternative WeightBuffer.read does not use: read on the learner
    # inside a function whose output returns to this process.
    with tf.device(device):
      return tf.raw_ops.ReadVariableOp(
          resource=buf._handle, dtype=tf.float32)  # pylint: disable=protected-access

  flat, version = buf.read()
  assert version == 1 and flat.shape == (WEIGHTS,)
  print(f"weight read of {WEIGHTS:,} floats (+ version), median over {reads}: "
        f"WeightBuffer.read {timed(buf.read):.2f} ms; "
        f"tf.function read to the local device "
        f"{timed(lambda: read_in_function().numpy()):.2f} ms; "
        f"trivial remote op round trip {timed(trivial):.2f} ms", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--actors", type=int, default=2)
  parser.add_argument("--seconds", type=float, default=10.0)
  parser.add_argument("--warmup", type=float, default=5.0)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--capacity", type=int, default=64)
  parser.add_argument("--reads", type=int, default=50)
  parser.add_argument("--role", choices=["learner", "actor", "reader"],
                      default="learner", help=argparse.SUPPRESS)
  parser.add_argument("--address", help=argparse.SUPPRESS)
  parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.role == "actor":
    return run_actor(args.address, args.seed)
  if args.role == "reader":
    return run_reader(args.address, args.reads)

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import processes, queue, server, weights  # pylint: disable=g-import-not-at-top

  srv = server.LearnerServer.start(server.free_port())
  q = queue.TrajectoryQueue.create(specs(), args.capacity, srv.device)
  sup = processes.Supervisor(grace_s=3)
  for i in range(args.actors):
    sup.start(f"actor_{i}", [sys.executable, __file__, "--role", "actor",
                             "--address", srv.address, "--seed", str(i)])
  dequeue = tf.function(lambda: q.dequeue_many(args.batch))
  try:
    start = time.monotonic()
    while time.monotonic() - start < args.warmup or q.size() < args.batch:
      time.sleep(0.1)
    dequeue()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
      dequeue()
      count += args.batch
    elapsed = time.perf_counter() - start
  finally:
    q.close()
    sup.terminate_all()
  size = trajectory_bytes()
  rate = count / elapsed
  print(f"queue: {args.actors} actor processes -> learner over loopback, "
        f"trajectory of {STEPS} x {'x'.join(map(str, FRAME))} uint8 frames "
        f"({size / 1e6:.3f} MB): {rate:,.0f} trajectories/s, "
        f"{rate * size / 1e6:,.0f} MB/s, {rate * (STEPS - 1) * 4:,.0f} frames/s "
        f"(T=20 new steps x 4 frames), over {elapsed:.1f}s; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

  buf = weights.WeightBuffer.create(WEIGHTS, srv.device)
  buf.publish(tf.random.normal([WEIGHTS]), 1)
  reader = subprocess.run([sys.executable, __file__, "--role", "reader",
                           "--address", srv.address,
                           "--reads", str(args.reads)], check=False)
  if reader.returncode != 0:
    raise SystemExit(f"weight reader failed with {reader.returncode}")


if __name__ == "__main__":
  main()
