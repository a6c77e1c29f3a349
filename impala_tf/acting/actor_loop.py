"""The actor's main loop: refresh weights, unroll, enqueue, until told to stop.

The same loop runs in an actor process (attached to the learner's channels
over TF's distributed runtime) and in an actor thread
in threads mode (`roles/threads.py`).
"""

import threading
import time
from typing import Any, Callable, Optional

import tensorflow as tf

from impala_tf.acting import actor as actor_lib
from impala_tf.runtime import faults
from impala_tf.agent import networks
from impala_tf.runtime import queue as queue_runtime
from impala_tf.runtime import server as server_lib
from impala_tf.runtime import weights as weights_runtime


def build_actor_network(experiment) -> networks.ImpalaNetwork:
  """The experiment's network with its variables created (weights are
  copied into them from the learner before every unroll)."""
  network = experiment.make_network()
  network(networks.dummy_input(experiment.observation_spec),
          network.initial_state(1))
  return network


def run_actor(experiment, actor_index: int, channels, *, seed: int = 0,
              stop: Optional[threading.Event] = None,
              log: Callable[[str], None] = print,
              network: Optional[networks.ImpalaNetwork] = None) -> int:
  """Steps, refreshes weights before every unroll, enqueues; returns the
  number of unrolls sent when the queue closes or `stop` is set.

  Args:
    channels: the learner's `runtime.channels.Channels`.
    network: the actor's copy of the policy, built by `build_actor_network`
      (default: built here).
  """
  stop = stop or threading.Event()
  faults.fail_if_injected("actor")
  env = experiment.make_env(actor_index, seed=seed)
  if network is None:
    network = build_actor_network(experiment)
  actor = actor_lib.Actor(env, network, experiment.config.unroll_length,
                          level_ids=experiment.level_ids(actor_index),
                          seed=seed * 7919 + actor_index,
                          actor_id=actor_index,
                          discount=experiment.config.discount)
  lagged = experiment.config.policy_lag is not None
  last_publication = None
  version = None
  warned = None  # The weights version the broken policy was reported for.
  unrolls = 0
  try:
    while not stop.is_set():
      try:
        if lagged:
          # A controlled policy lag (App. E.1): one unroll per publication,
          # so the learner gets each one's trajectories once.
          publication = channels.weights.publication()
          if publication == last_publication:
            time.sleep(0.005)
            continue
          last_publication = publication
        else:
          # Weights read only once the queue has room for what they make
          # (none of the unroll's age is spent waiting to enqueue it).
          channels.queue.wait_to_start()
        flat, published = channels.weights.read()
      except weights_runtime.WeightsNotPublishedError:
        time.sleep(0.2)
        continue
      except queue_runtime.QueueClosedError:
        break
      if published != version:
        weights_runtime.unflatten_into(network.trainable_variables, flat)
        version = published
        if lagged:
          # Every step of the unroll, its first included, acts with this
          # version (App. E.1: lag exactly k).
          actor.refresh_first_step()
      broken_before = actor.broken_policy_steps
      trajectories = actor.unroll(policy_version=version)
      if actor.broken_policy_steps > broken_before and version != warned:
        log(f"Actor {actor_index}: the policy is broken: its logits are not "
            f"finite at weights version {version} (the learner's weights "
            "diverged, not the environment); the steps go to the learner, "
            "whose divergence guard decides.")
        warned = version
      try:
        channels.queue.enqueue_many(trajectories)
      except queue_runtime.QueueClosedError:
        break
      unrolls += 1
  except (tf.errors.OpError, TypeError) as e:
    # A learner that ends normally closes the queue first (handled above);
    # this is one that died. TF's message is a page of gRPC detail, and TF
    # calls the same event by several names (`server_lib.is_learner_lost`).
    if not server_lib.is_learner_lost(e):
      raise
    raise _learner_lost(actor_index, unrolls, e) from None
  finally:
    env.close()
  log(f"Actor {actor_index}: sent {unrolls} unrolls of "
      f"{experiment.envs_per_actor} trajectories; stopping.")
  return unrolls


def _learner_lost(actor_index: int, unrolls: int, error: BaseException):
  """The one-line `LearnerLostError` of an actor whose learner went away
  (TF's message is a page of gRPC detail: its first line)."""
  first = (getattr(error, "message", None) or str(error)).strip().splitlines()
  return server_lib.LearnerLostError(
      f"Actor {actor_index} lost the learner after {unrolls} unrolls "
      f"({first[0] if first else type(error).__name__})")


def _queue_closed(trajectory_queue) -> bool:
  """Whether the learner closed `trajectory_queue`; False when the learner
  cannot be asked (it is gone)."""
  try:
    return trajectory_queue.is_closed()
  except (tf.errors.OpError, TypeError) as e:
    if not server_lib.is_learner_lost(e):
      raise
    return False


def run_central_actor(experiment, actor_index: int, trajectory_queue,
                      connect: Callable[[], Any], *, groups: int = 1,
                      seed: int = 0,
                      stop: Optional[threading.Event] = None,
                      log: Callable[[str], None] = print) -> int:
  """An actor whose policy runs on the inference server
  (`--inference=central`): it only steps environments, split into `groups`
  that each wait for their actions while the others step, and enqueues
  each group's unrolls as they end. Returns the unrolls sent when the
  queue closes or `stop` is set.

  Args:
    trajectory_queue: the learner's `runtime.queue.TrajectoryQueue`.
    connect: a new connection to the server, one per group
      (`inference.transport`).

  Raises:
    server_lib.LearnerLostError: the learner (or its server) went away.
  """
  # pylint: disable=g-import-not-at-top
  from impala_tf.inference import client
  from impala_tf.inference import server as inference_server
  from impala_tf.inference import transport
  stop = stop or threading.Event()
  faults.fail_if_injected("actor")
  config = experiment.config
  n = experiment.envs_per_actor
  unrolls = [0] * groups
  errors: list[BaseException] = []

  def run_group(g):
    part = experiment.group_slice((g, groups))
    env = experiment.make_env(actor_index, seed=seed, group=(g, groups))
    connection = None
    try:
      connection = connect()
      policy = client.RemotePolicy(
          connection, inference_server.slots_of(
              actor_index, n, part.start, part.stop - part.start),
          config.use_lstm, config.use_instruction)
      actor = actor_lib.Actor(
          env, policy, config.unroll_length,
          level_ids=experiment.level_ids(actor_index)[part],
          seed=seed * 7919 + actor_index + g * 1_000_003,
          actor_id=actor_index, discount=config.discount)
      while not stop.is_set():
        trajectory_queue.wait_to_start()
        trajectory_queue.enqueue_many(actor.unroll())
        unrolls[g] += 1
    except queue_runtime.QueueClosedError:
      pass  # The learner is done.
    except transport.InferenceLostError as e:
      # At a run's end the server stops serving once the learner closed
      # the queue, and a group waiting for actions hears that first: the
      # run is over, not lost, when the queue says it closed.
      if not _queue_closed(trajectory_queue):
        errors.append(e)
    except BaseException as e:  # Said by the actor's thread below.
      errors.append(e)
    finally:
      stop.set()
      env.close()
      if connection is not None:
        connection.close()

  threads = [threading.Thread(target=run_group, args=(g,), daemon=True,
                              name=f"actor-{actor_index}-group-{g}")
             for g in range(groups)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  if errors:
    error = errors[0]
    lost = isinstance(error, transport.InferenceLostError) or (
        isinstance(error, (tf.errors.OpError, TypeError)) and
        server_lib.is_learner_lost(error))
    if not lost:
      raise error
    raise _learner_lost(actor_index, sum(unrolls), error) from None
  log(f"Actor {actor_index}: sent {sum(unrolls)} unrolls of {n} "
      f"trajectories in {groups} group{'s' if groups > 1 else ''} "
      "(central inference); stopping.")
  return sum(unrolls)
