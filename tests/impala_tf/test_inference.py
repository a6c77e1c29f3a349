"""Central inference (`--inference=central`): the server's batches give the
actor the trajectories its own copy of the policy would."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.acting import actor as actor_lib
from impala_tf.acting import actor_loop
from impala_tf.config import experiment as experiment_lib
from impala_tf.config import presets
from impala_tf.inference import client
from impala_tf.inference import codec
from impala_tf.inference import server as server_lib
from impala_tf.inference import transport
from impala_tf.runtime import server as tf_server
from impala_tf.runtime import weights as weights_runtime

_NAMES = iter(range(10**6))


def _experiment(use_lstm):
  return experiment_lib.build(
      "catch", config=presets.CATCH.replace(use_lstm=use_lstm,
                                            unroll_length=6),
      envs_per_actor=4)


def _published(exp, seed):
  """A network with random weights, published as version 7."""
  tf.random.set_seed(seed)
  network = actor_loop.build_actor_network(exp)
  buffer = weights_runtime.WeightBuffer.create(
      weights_runtime.num_elements(network.trainable_variables),
      tf_server.LOCAL_CPU, shared_name=f"inference_test_{next(_NAMES)}")
  buffer.publish(weights_runtime.flatten(network.trainable_variables), 7)
  return network, buffer


@pytest.mark.parametrize("use_lstm", [False, True],
                         ids=["feed_forward", "lstm"])
def test_central_and_actor_inference_make_the_same_trajectories(use_lstm):
  exp = _experiment(use_lstm)
  network, buffer = _published(exp, seed=3)
  server = server_lib.InferenceServer(exp, buffer, max_batch=64,
                                      max_wait_s=0.0).start()
  try:
    local = actor_lib.Actor(exp.make_env(0, seed=5), network, 6, seed=11)
    central = actor_lib.Actor(
        exp.make_env(0, seed=5),
        client.RemotePolicy(transport.LocalConnection(server),
                            server_lib.slots_of(0, 4), use_lstm, False),
        6, seed=11)
    episodes_ended = 0
    for _ in range(5):  # 30 steps: Catch's episodes (11 steps) end inside.
      want, got = local.unroll(policy_version=7), central.unroll()
      episodes_ended += want["done"][:, 1:].sum()
      for name in want:
        if want[name].dtype.kind == "f":
          np.testing.assert_allclose(got[name], want[name], rtol=1e-5,
                                     atol=1e-6, err_msg=name)
        else:
          np.testing.assert_array_equal(got[name], want[name], name)
    assert episodes_ended >= 8  # Core states were reset on the server.
  finally:
    server.stop()
  stats = server.take_stats()
  assert stats.batches > 0 and stats.environments == 4 * (1 + 5 * 6)


class _ServerGone:
  """A connection whose server has stopped serving."""

  def call(self, request):
    del request
    raise transport.InferenceLostError("the inference server went away")

  def close(self):
    pass


class _Queue:
  """The learner's queue as an actor sees it: open or closed."""

  def __init__(self, closed):
    self.closed = closed

  def wait_to_start(self):
    pass

  def enqueue_many(self, trajectories):
    raise AssertionError("no unroll can end without actions")

  def is_closed(self):
    return self.closed


@pytest.mark.parametrize("closed", [True, False])
def test_a_server_gone_after_the_queue_closed_ends_the_actor_cleanly(closed):
  # At a run's end the server stops once the learner closed the queue; a
  # group waiting for actions hears that first. A closed queue: the run is
  # over (the actor says what it sent); an open one: the learner is lost.
  lines = []
  run = functools.partial(
      actor_loop.run_central_actor, _experiment(False), 0, _Queue(closed),
      _ServerGone, groups=2, log=lines.append)
  if closed:
    assert run() == 0
    assert lines == ["Actor 0: sent 0 unrolls of 4 trajectories in 2 groups "
                     "(central inference); stopping."]
  else:
    with pytest.raises(tf_server.LearnerLostError,
                       match=r"^Actor 0 lost the learner after 0 unrolls "
                       r"\(the inference server went away\)$"):
      run()
    assert not lines


@pytest.mark.slow
def test_catch_learns_with_central_inference_in_threads_mode(tmp_path):
  from impala_tf.config import plan as plan_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.roles import threads  # pylint: disable=g-import-not-at-top
  lines = []
  config = presets.CATCH.replace(total_frames=96_000)
  result = threads.train_in_process(
      experiment_lib.build("catch", config=config), num_actors=2,
      logdir=str(tmp_path), log=lines.append, log_interval_s=2.0,
      inference=plan_lib.InferenceOptions(mode="central", batch=16,
                                          wait_s=0.001, groups=2))
  assert result.mean_returns["catch"] >= 0.9, lines
  # Each actor's two groups, and the server's batches, said in the end.
  assert any("in 2 groups (central inference)" in line for line in lines)
  totals = [line for line in lines if "in the whole run" in line]
  assert totals and "inference:" in totals[0], lines


@pytest.mark.slow
@pytest.mark.parametrize("server", ["process", "learner"])
def test_catch_learns_with_central_inference_in_process_mode(tmp_path,
                                                             server):
  # Actor processes that only step environments; the policy on the
  # inference server (a process of its own, or a thread of the learner)
  # behind its socket.
  from impala_tf.testing import launches  # pylint: disable=g-import-not-at-top
  launch = launches.Launch(tmp_path, "--suite=catch", "--num_actors=2",
                           "--inference=central", "--inference_groups=2",
                           f"--inference_server={server}",
                           "--total_frames=80000")
  try:
    assert launch.finish() == 0, launch.output
  finally:
    launch.kill_everything()
  result = launch.result()
  assert result["status"] == "completed", launch.output
  assert result["mean_returns"]["catch"] >= 0.9, launch.output
  if server == "process":
    launch.wait_for(r"^Inference: serving on port \d+ for the learner at "
                    r"127\.0\.0\.1:\d+: batches of up to 16 environments")
    launch.wait_for(r"^Inference: [\d,]+ batches of [\d.]+ environments .* "
                    "in the whole run")
  else:
    launch.wait_for(r"^Learner: central inference on port \d+: batches of up "
                    "to 16 environments")
    launch.wait_for(r"^Learner: inference: [\d,]+ batches of [\d.]+ "
                    "environments .* in the whole run")
  for actor in (0, 1):
    launch.wait_for(rf"Actor {actor}: sent \d+ unrolls of 8 trajectories in "
                    r"2 groups \(central inference\)")


def test_messages_carry_arrays_and_refuse_what_is_not_one():
  arrays = {"frame": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
            "done": np.array([True, False]),
            "noise": np.zeros((2, 0), np.float32)}
  meta, back = codec.decode(codec.encode({"kind": "act", "n": 2}, arrays))
  assert meta == {"kind": "act", "n": 2}
  for name, value in arrays.items():
    np.testing.assert_array_equal(back[name], value)
    assert back[name].dtype == value.dtype
  with pytest.raises(codec.MessageError, match="dtype object"):
    codec.encode({}, {"x": np.array([object()])})
  with pytest.raises(codec.MessageError, match="not an inference message"):
    codec.decode(b"\x05\x00\x00\x00hello")
  with pytest.raises(codec.MessageError, match="bytes after the arrays"):
    codec.decode(codec.encode({}, {"x": np.zeros(2, np.int32)}) + b"!")


def test_the_server_takes_the_runs_inference_options():
  from impala_tf.config import plan  # pylint: disable=g-import-not-at-top
  exp = _experiment(False)
  options = plan.InferenceOptions(mode="central", batch=12, wait_s=0.002)
  server = server_lib.InferenceServer.from_options(exp, None, options,
                                                   max_batch=99)
  assert (server.max_batch, server.max_wait_s) == (12, 0.002)
  assert server.describe() == ("batches of up to 12 environments, waiting "
                               "at most 2 ms, on the default device; "
                               "float32")
  # The options' batch left 0 (threads mode): the caller's count.
  unset = plan.InferenceOptions(mode="central", device="/cpu:0")
  server = server_lib.InferenceServer.from_options(exp, None, unset,
                                                   max_batch=8)
  assert server.max_batch == 8
  assert server.describe().endswith("waiting at most 0 ms, on /cpu:0; "
                                    "float32")
  with pytest.raises(ValueError, match="max_batch must be at least 1, got 0"):
    server_lib.InferenceServer.from_options(exp, None, unset)


def test_a_request_the_policy_cannot_take_is_answered_with_its_error():
  exp = _experiment(False)
  _, buffer = _published(exp, seed=0)
  server = server_lib.InferenceServer(exp, buffer, max_wait_s=0.0).start()
  try:
    policy = client.RemotePolicy(transport.LocalConnection(server),
                                 server_lib.slots_of(0, 4), False, False)
    wrong = {"frame": np.zeros((4, 3, 3, 1), np.uint8)}  # Not Catch's.
    with pytest.raises(transport.InferenceRequestError,
                       match="same experiment as the learner"):
      policy.act(np.zeros(4, np.int32), np.zeros(4, np.float32),
                 np.ones(4, bool), wrong, None,
                 np.zeros((4, exp.num_actions), np.float32))
    # The server goes on serving the actors that send what it expects.
    frame = np.zeros((4, *exp.observation_spec["frame"][0]), np.uint8)
    action, logits, _, _ = policy.act(
        np.zeros(4, np.int32), np.zeros(4, np.float32), np.ones(4, bool),
        {"frame": frame}, None, np.zeros((4, exp.num_actions), np.float32))
    assert action.shape == (4,) and logits.shape == (4, exp.num_actions)
    assert policy.version == 7
  finally:
    server.stop()


def test_an_actor_with_another_key_is_refused_in_one_line():
  import multiprocessing.connection  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  listener = multiprocessing.connection.Listener(("127.0.0.1", 0),
                                                 authkey=b"a" * 32)
  refused = []

  def accept():
    try:
      listener.accept()
    except multiprocessing.AuthenticationError as e:
      refused.append(e)

  thread = threading.Thread(target=accept, daemon=True)
  thread.start()
  try:
    with pytest.raises(transport.InferenceRequestError,
                       match="IMPALA_TF_INFERENCE_KEY differs"):
      transport.SocketConnection(f"127.0.0.1:{listener.address[1]}",
                                 timeout_s=5, key=b"b" * 32)
    thread.join(timeout=5)
    assert refused
  finally:
    listener.close()
