"""The queue and weight buffer in one process (no server): input checks,
closing, descriptors, flattening. The cross-process behaviour is tested in
test_runtime_queue_weights.py."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.runtime import queue as rqueue
from impala_tf.runtime import weights

DEVICE = "/device:CPU:0"
_names = (f"local_{i}" for i in itertools.count())

SPECS = {
    "frame": tf.TensorSpec([3, 2, 2, 1], tf.uint8),
    "reward": tf.TensorSpec([3], tf.float32),
    "policy_version": tf.TensorSpec([], tf.int64),
}


def _traj(i):
  return {"frame": np.full([3, 2, 2, 1], i, np.uint8),
          "reward": np.arange(3, dtype=np.float32) + i,
          "policy_version": np.int64(2**40 + i)}


def test_runtime_enqueue_then_dequeue_many_in_order():
  q = rqueue.TrajectoryQueue.create(SPECS, 8, DEVICE, shared_name=next(_names))
  for i in range(3):
    q.enqueue(_traj(i))
  q.enqueue_many({k: np.stack([_traj(i)[k] for i in (3, 4)]) for k in SPECS})
  assert q.size() == 5
  out = q.dequeue_many(5)
  assert sorted(out) == sorted(SPECS)
  assert out["frame"].shape == [5, 3, 2, 2, 1]
  np.testing.assert_array_equal(out["frame"].numpy()[:, 0, 0, 0, 0], range(5))
  np.testing.assert_array_equal(out["policy_version"], 2**40 + np.arange(5))
  np.testing.assert_array_equal(out["reward"][4], [4, 5, 6])


def test_runtime_dequeue_many_inside_tf_function_has_static_shapes():
  q = rqueue.TrajectoryQueue.create(SPECS, 8, DEVICE, shared_name=next(_names))
  for i in range(4):
    q.enqueue(_traj(i))
  shapes = {}

  @tf.function
  def step():
    batch = q.dequeue_many(2)
    shapes.update({k: v.shape.as_list() for k, v in batch.items()})
    return tf.reduce_sum(tf.cast(batch["frame"], tf.int32))

  assert int(step()) == (0 + 1) * 12 and int(step()) == (2 + 3) * 12
  assert shapes == {"frame": [2, 3, 2, 2, 1], "reward": [2, 3],
                    "policy_version": [2]}


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop("reward"), r"missing \['reward'\]"),
    (lambda t: t.update(extra=np.zeros(1)), r"unexpected \['extra'\]"),
    (lambda t: t.update(reward=t["reward"].astype(np.float64)),
     "'reward': dtype float64, the queue expects float32"),
    (lambda t: t.update(frame=np.zeros([3, 2, 2, 2], np.uint8)),
     r"'frame': shape \[3, 2, 2, 2\], the queue expects \[3, 2, 2, 1\]"),
    (lambda t: t.update(policy_version=tf.constant([1], tf.int64)),
     r"'policy_version': shape \[1\]"),
])
def test_runtime_bad_trajectory_is_rejected_before_sending(change, message):
  q = rqueue.TrajectoryQueue.create(SPECS, 8, DEVICE, shared_name=next(_names))
  traj = _traj(0)
  change(traj)
  with pytest.raises(ValueError, match=message):
    q.enqueue(traj)
  assert q.size() == 0


def test_runtime_enqueue_many_checks_the_batch_dimension():
  q = rqueue.TrajectoryQueue.create(SPECS, 8, DEVICE, shared_name=next(_names))
  batch = {k: np.stack([_traj(i)[k] for i in (0, 1)]) for k in SPECS}
  batch["reward"] = batch["reward"][:1]
  with pytest.raises(ValueError, match="'reward': batch size 1"):
    q.enqueue_many(batch)
  assert q.size() == 0


def test_runtime_closed_queue_raises_queue_closed_error():
  q = rqueue.TrajectoryQueue.create(SPECS, 8, DEVICE, shared_name=next(_names))
  q.enqueue(_traj(0))
  q.close()
  with pytest.raises(rqueue.QueueClosedError):
    q.enqueue(_traj(1))
  assert q.dequeue_many(1)["reward"].numpy().tolist() == [[0, 1, 2]]
  with pytest.raises(rqueue.QueueClosedError):
    q.dequeue_many(1)


def test_runtime_attach_checks_the_learner_created_the_same_queue():
  name = next(_names)
  with pytest.raises(rqueue.QueueNotFoundError, match=name):
    rqueue.TrajectoryQueue.attach(SPECS, DEVICE, shared_name=name)
  learner_q = rqueue.TrajectoryQueue.create(SPECS, 5, DEVICE, shared_name=name,
                                            slack=3)
  other = dict(SPECS, reward=tf.TensorSpec([4], tf.float32))
  with pytest.raises(ValueError, match=r"reward: learner \['float32', \[3\]\], "
                     r"here \['float32', \[4\]\]"):
    rqueue.TrajectoryQueue.attach(other, DEVICE, shared_name=name)
  actor_q = rqueue.TrajectoryQueue.attach(SPECS, DEVICE, shared_name=name)
  assert (actor_q.capacity, actor_q.slack) == (5, 3)
  actor_q.enqueue(_traj(7))
  assert learner_q.size() == 1
  assert int(learner_q.dequeue_many(1)["policy_version"][0]) == 2**40 + 7


def test_runtime_flatten_unflatten_round_trip():
  source = [tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3)),
            tf.Variable([7.0]), tf.Variable(np.float32(8.0))]
  target = [tf.Variable(tf.zeros_like(v)) for v in source]
  assert weights.num_elements(source) == 8
  flat = weights.flatten(source)
  np.testing.assert_array_equal(flat, np.arange(9, dtype=np.float32)[
      [0, 1, 2, 3, 4, 5, 7, 8]])
  weights.unflatten_into(target, flat)
  for s, t in zip(source, target):
    np.testing.assert_array_equal(s, t)
  with pytest.raises(ValueError, match="hold 8 elements"):
    weights.unflatten_into(target, tf.zeros([7]))
  with pytest.raises(ValueError, match="float32"):
    weights.flatten([tf.Variable([1], dtype=tf.int32)])


def test_runtime_weight_buffer_publish_and_read_locally():
  name = next(_names)
  buf = weights.WeightBuffer.create(4, DEVICE, shared_name=name)
  with pytest.raises(weights.WeightsNotPublishedError, match=name):
    buf.read()
  version = 2**53 + 1  # Not representable as a float64 either.
  tf.function(lambda: buf.publish(tf.constant([1.0, 2, 3, 4]),
                                  tf.constant(version, tf.int64)))()
  flat, got = buf.read()
  assert got == version and flat.tolist() == [1, 2, 3, 4]
  with pytest.raises(ValueError, match="holds 4 elements"):
    buf.publish(tf.zeros([5]), 1)
  wrong = weights.WeightBuffer.attach(3, DEVICE, shared_name=name)
  with pytest.raises(ValueError, match="hold 4 elements, this actor expects 3"):
    wrong.read()
