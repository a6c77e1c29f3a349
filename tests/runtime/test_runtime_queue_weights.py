"""The learner-hosted trajectory queue and published weights, across real
processes: a learner process (driven by commands) and actor processes."""

import collections
import time

import pytest

from impala_tf.runtime import server

from impala_tf.testing import runtime_roles as roles


@pytest.fixture(scope="module")
def learner():
  proc = roles.Proc("learner", "--port", str(server.free_port()), stdin=True)
  ready = proc.read(timeout_s=60)
  proc.address = ready["ready"]
  assert ready["device"] == "/job:learner/replica:0/task:0/device:CPU:0"
  yield proc
  proc.kill()


@pytest.fixture
def spawn():
  procs = []

  def start(*args, stdin=False):
    proc = roles.Proc(*args, stdin=stdin)
    procs.append(proc)
    return proc

  yield start
  for proc in procs:
    proc.kill()


def _actor_args(learner, queue, actor_id, **kw):
  args = ["actor", "--address", learner.address, "--queue", queue,
          "--actor-id", str(actor_id)]
  for k, v in kw.items():
    args += [f"--{k}", str(v)]
  return args


def test_runtime_two_actor_processes_deliver_every_item_intact(learner, spawn):
  learner.call(cmd="create_queue", name="q_two", steps=5, capacity=8)
  # Capacity 8 < 2 x 15 items: the actors block on a full queue and resume.
  spawn(*_actor_args(learner, "q_two", 1, count=15))
  spawn(*_actor_args(learner, "q_two", 2, count=15, batch=3))
  items = []
  for _ in range(5):
    reply = learner.call(cmd="dequeue", name="q_two", n=6)
    assert reply["shape"] == [6, 5, 84, 84, 4]
    items += reply["items"]
  assert all(ok for _, _, ok in items), items
  by_actor = collections.defaultdict(list)
  for actor_id, seq, _ in items:
    by_actor[actor_id].append(seq)
  # Exactly all items, and each actor's in the order it sent them.
  assert by_actor == {1: list(range(15)), 2: list(range(15))}
  assert learner.call(cmd="size", name="q_two") == {"size": 0}


@pytest.mark.slow
def test_runtime_sigkilled_actor_leaves_queue_usable(learner, spawn):
  learner.call(cmd="create_queue", name="q_kill", steps=21, capacity=4)
  victim = spawn(*_actor_args(learner, "q_kill", 1, steps=21))
  steady = spawn(*_actor_args(learner, "q_kill", 2, steps=21))
  late = spawn(*_actor_args(learner, "q_kill", 3, steps=21), "--wait-for-go",
               stdin=True)
  reported = {1: victim.read_until("enqueued")["enqueued"],
              2: steady.read_until("enqueued")["enqueued"]}
  late.read_until("waiting")
  # Backpressure: with nobody dequeuing, the actors stop at the capacity
  # (plus at most one item per other actor racing for the last place), and
  # every enqueue they reported has really arrived. Wait until the queue is
  # full and every enqueue in it has been reported, however slow the machine.
  deadline = time.monotonic() + 30
  while True:
    for actor_id, actor in ((1, victim), (2, steady)):
      for msg in actor.drain():
        reported[actor_id] = max(reported[actor_id], msg.get("enqueued", 0))
    size = learner.call(cmd="size", name="q_kill")["size"]
    if size >= 4 and reported[1] + reported[2] == size:
      break
    assert time.monotonic() < deadline, (size, reported)
    time.sleep(0.1)
  assert size <= 5, (size, reported)
  victim.kill()
  # A new actor connects and attaches while the queue is full and an actor
  # waits for room: waiting actors must not hold up the learner's server.
  late.send(go=True)
  late.read_until("attached", timeout_s=20)
  seen = collections.defaultdict(list)
  deadline = time.monotonic() + 60
  while 3 not in seen or len(seen[2]) < 12:
    assert time.monotonic() < deadline, f"items stopped arriving: {seen}"
    for actor_id, seq, ok in learner.call(
        cmd="dequeue", name="q_kill", n=4, in_function=True)["items"]:
      assert ok, (actor_id, seq)
      seen[actor_id].append(seq)
  # Whole items only, each actor's in order; of the victim exactly those it
  # reported before it died.
  assert seen[1] == list(range(reported[1]))
  assert seen[2] == list(range(len(seen[2])))
  assert seen[3] == list(range(len(seen[3])))
  # Closing the queue ends the running actors cleanly.
  learner.call(cmd="close", name="q_kill")
  for actor in (steady, late):
    assert "done" in actor.read_until("done", timeout_s=30)
    assert actor.popen.wait(timeout=30) == 0


def test_runtime_actor_reads_published_weights_with_exact_version(
    learner, spawn):
  n = 1000
  learner.call(cmd="create_weights", name="w_exact", n=n)
  learner.call(cmd="publish", name="w_exact", version=roles.NAN_BITS_VERSION)
  reader = spawn("reader", "--address", learner.address, "--name", "w_exact",
                 "--n", str(n))
  reply = reader.read(timeout_s=60)
  assert reply["versions"] == [roles.NAN_BITS_VERSION]
  assert reply["torn"] == 0


def test_runtime_weight_reads_are_never_torn(learner, spawn):
  n = 200_000
  learner.call(cmd="create_weights", name="w_torn", n=n)
  learner.call(cmd="publish", name="w_torn", version=roles.WEIGHT_VERSION_BASE)
  learner.call(cmd="publish_loop", name="w_torn",
               start=roles.WEIGHT_VERSION_BASE + 1)
  reader = spawn("reader", "--address", learner.address, "--name", "w_torn",
                 "--n", str(n), "--reads", "60")
  reply = reader.read(timeout_s=60)
  last = learner.call(cmd="stop_publish", name="w_torn")["last_version"]
  versions = reply["versions"]
  assert reply["torn"] == 0
  assert versions == sorted(versions)
  assert all(roles.WEIGHT_VERSION_BASE <= v <= last for v in versions)
  # The learner published while the actor read: it saw several versions.
  assert len(set(versions)) > 5, versions


def test_runtime_connect_to_unreachable_learner_raises_after_retries():
  address = f"127.0.0.1:{server.free_port()}"  # Nothing listens there.
  lines = []
  start = time.monotonic()
  with pytest.raises(server.LearnerUnreachableError, match=address):
    server.connect_to_learner(address, timeout_s=3.0, log=lines.append)
  elapsed = time.monotonic() - start
  assert 3.0 <= elapsed < 5.0
  assert len(lines) >= 3  # Backoff 0.5, 1, then what remains.
  assert all(address in line and "retrying in" in line for line in lines)
  assert [f"attempt {i + 1}" in line for i, line in enumerate(lines)] == [
      True] * len(lines)


def test_runtime_bad_address_is_a_clear_error():
  with pytest.raises(ValueError, match="HOST:PORT"):
    server.connect_to_learner("localhost", timeout_s=1)
