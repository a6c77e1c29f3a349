"""The inference server: one place that evaluates the policy for the
environments of every actor, in batches.

Requests (one per group of an actor's environments and step) go into one
queue; the server's thread takes the first, then more until the batch holds
`max_batch` environments or `max_wait_s` has passed since the first
arrived, and runs the actors' own policy step (`acting.actor.policy_step`)
on all of them at once, on its device. It keeps what only it needs: the
core state of every environment (a table indexed by the environment's
slot, `slots_of`), which the network resets itself where an episode
starts. Its weights are the learner's latest publication, read between
batches; every reply says which version acted, so an actor's trajectory
records the oldest version in it and the learner's lag stays measured.

The server does not know how requests reach it: `submit` takes a `Request`
with a reply callback. In threads mode actors call it directly
(`client.LocalConnection`); actor processes go through a socket next to
the learner's TF server (`transport`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np
import sonnet as snt
import tensorflow as tf

from impala_tf.acting import actor as actor_lib
from impala_tf.agent import networks
from impala_tf.config import experiment as experiment_lib
from impala_tf.learner_loop import base
from impala_tf.runtime import weights as weights_runtime

# What a reply callback gets: (meta, arrays); meta["error"] on failure.
Reply = Callable[[Mapping[str, Any], Mapping[str, np.ndarray]], None]


def slots_of(actor_index: int, envs_per_actor: int, first: int = 0,
             count: Optional[int] = None) -> np.ndarray:
  """int32: the server's state-table slots of environments `first` to
  `first + count` of actor `actor_index` (every environment of a run has
  one slot of its own)."""
  count = envs_per_actor - first if count is None else count
  start = actor_index * envs_per_actor + first
  return np.arange(start, start + count, dtype=np.int32)


@dataclasses.dataclass
class Request:
  """One group of an actor's environments, for one step.

  kind: "act" (the policy's step: action and logits, the core state moves
    on) or "value" (V of the observations in the current state; nothing
    moves on).
  slots: int32 `[n]`, the environments' state-table slots.
  arrays: prev_action, reward, done (act), noise (act: Gumbel draws
    `[n, A]`), "obs/<name>" for each observation, and "state_h"/"state_c"
    to act from that core state instead of the table's.
  channels_first: the frames come as `[n, C, H, W]` (`frames_as_stored`).
  want_state: the reply carries the core state before the step.
  """
  kind: str
  slots: np.ndarray
  arrays: Mapping[str, np.ndarray]
  reply: Reply
  channels_first: bool = False
  want_state: bool = False
  arrived: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass
class Stats:
  """What the server did since it started (or since `take_stats`)."""
  batches: int = 0
  requests: int = 0
  environments: int = 0
  wait_s: float = 0.0      # Summed over requests: arrival to compute.
  compute_s: float = 0.0   # Summed over batches.
  dropped_replies: int = 0  # Replies to actors that were gone.

  @property
  def mean_batch(self) -> float:
    return self.environments / self.batches if self.batches else 0.0

  @property
  def mean_wait_ms(self) -> float:
    return 1e3 * self.wait_s / self.requests if self.requests else 0.0

  def line(self) -> str:
    per_batch = max(self.batches, 1)
    return (f"{self.batches:,} batches of {self.mean_batch:.1f} "
            f"environments on average ({self.requests / per_batch:.1f} "
            f"requests), {self.mean_wait_ms:.2f} ms from request to "
            f"compute, {1e3 * self.compute_s / per_batch:.2f} ms per batch")


_STOP = object()


class InferenceServer:
  """See the module docstring.

  Args:
    experiment: what the actors play (network, observations, actions).
    weights: the learner's published weights (`runtime.weights.WeightBuffer`).
    device: where the policy runs (default: TF's choice, the first GPU if
      there is one).
    max_batch: most environments in one batch.
    max_wait_s: longest a batch waits for more requests after its first.
    log: where the server reports (one line each).
    refresh_interval_s: the shortest time between two looks at the
      publication (each is a round trip when the weights are remote).
  """

  @classmethod
  def from_options(cls, experiment: experiment_lib.Experiment,
                   weights: Optional[weights_runtime.WeightBuffer],
                   options, *, log: Callable[[str], None] = print,
                   max_batch: int = 0,
                   refresh_interval_s: float = 0.0) -> "InferenceServer":
    """The server a run's `plan.InferenceOptions` ask for (`--inference_*`):
    its device, batch (`max_batch` where the options leave it 0) and
    wait."""
    return cls(experiment, weights, device=options.device or None,
               max_batch=options.batch or max_batch,
               max_wait_s=options.wait_s, log=log,
               refresh_interval_s=refresh_interval_s)

  def describe(self) -> str:
    """"batches of up to N environments, waiting at most W ms, on DEVICE;
    PRECISION": what the run's first lines say of the server."""
    return (f"batches of up to {self.max_batch} environments, waiting at "
            f"most {1e3 * self.max_wait_s:g} ms, on "
            f"{self._device or 'the default device'}; "
            f"{self.experiment.config.precision}")

  def __init__(self, experiment: experiment_lib.Experiment,
               weights: Optional[weights_runtime.WeightBuffer], *,
               device: Optional[str] = None, max_batch: int = 64,
               max_wait_s: float = 0.001,
               log: Callable[[str], None] = print,
               refresh_interval_s: float = 0.0):
    if max_batch < 1:
      raise ValueError(f"max_batch must be at least 1, got {max_batch}.")
    if max_wait_s < 0:
      raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}.")
    self.experiment = experiment
    self.max_batch = int(max_batch)
    self.max_wait_s = float(max_wait_s)
    self.weights = weights  # Set before `start` when given as None.
    self._refresh_interval_s = refresh_interval_s
    self._last_look = -float("inf")
    self._device = device
    self._log = log
    self._requests: queue.SimpleQueue = queue.SimpleQueue()
    self._stats = Stats()
    self._stats_lock = threading.Lock()
    self._thread: Optional[threading.Thread] = None
    self._publication = None
    self.version: Optional[int] = None
    self.error: Optional[BaseException] = None
    config = experiment.config
    self.use_lstm = config.use_lstm
    self._names = experiment_lib.observations_sent(
        experiment.observation_spec, config.use_instruction)
    with self._on_device():
      self.network = experiment.make_network()
      self.network(networks.dummy_input(experiment.observation_spec),
                   self.network.initial_state(1))
    self._variables = self.network.trainable_variables
    # The core state table (LSTM only): slot → hidden, cell.
    self._hidden = np.zeros((0, networks.CORE_SIZE), np.float32)
    self._cell = np.zeros((0, networks.CORE_SIZE), np.float32)
    self._act_fn = {cf: self._trace_act(cf) for cf in (False, True)
                    if cf is False or self._has_frames()}
    self._value_fn = self._trace_value()

  def _on_device(self):
    return (tf.device(self._device) if self._device
            else contextlib.nullcontext())

  def _has_frames(self) -> bool:
    shape, _ = self.experiment.observation_spec.get("frame", ((), None))
    return len(shape) == 3

  def _observation_specs(self, channels_first: bool):
    specs = {}
    for name in self._names:
      shape, dtype = self.experiment.observation_spec[name]
      shape = tuple(shape)
      if name == "frame" and channels_first:
        shape = (shape[2], shape[0], shape[1])
      specs[name] = tf.TensorSpec((None, *shape), tf.as_dtype(dtype))
    return specs

  def _state_specs(self):
    if not self.use_lstm:
      return ()
    spec = tf.TensorSpec((None, networks.CORE_SIZE), tf.float32)
    return snt.LSTMState(hidden=spec, cell=spec)

  def _trace_act(self, channels_first: bool):
    num_actions = self.experiment.num_actions

    def step(prev_action, reward, done, observation, state, noise):
      return actor_lib.policy_step(self.network, prev_action, reward, done,
                                   observation, state, noise, channels_first)

    with self._on_device():
      return tf.function(step).get_concrete_function(
          tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32),
          tf.TensorSpec((None,), tf.bool),
          self._observation_specs(channels_first), self._state_specs(),
          tf.TensorSpec((None, num_actions), tf.float32))

  def _trace_value(self):
    def value(prev_action, reward, observation, state):
      inputs = networks.AgentInput(prev_action, reward,
                                   tf.zeros_like(reward, tf.bool), observation)
      outputs, _ = self.network(inputs, state)
      return outputs.baseline

    with self._on_device():
      return tf.function(value).get_concrete_function(
          tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32),
          self._observation_specs(False), self._state_specs())

  # The request side.

  def submit(self, request: Request) -> None:
    """Queues `request`; its reply comes from the server's thread."""
    if self.error is not None:
      request.reply({"error": f"the inference server failed: "
                              f"{self.error!r}"}, {})
      return
    self._requests.put(request)

  def start(self) -> "InferenceServer":
    """Starts the server's thread (a daemon)."""
    self._thread = threading.Thread(target=self._serve, name="inference",
                                    daemon=True)
    self._thread.start()
    return self

  def stop(self, timeout_s: float = 10.0) -> None:
    """Stops the thread after the batch under way."""
    if self._thread is None:
      return
    self._requests.put(_STOP)
    self._thread.join(timeout_s)
    self._thread = None

  def take_stats(self) -> Stats:
    """The stats since the last call (or the start), and starts afresh."""
    with self._stats_lock:
      stats, self._stats = self._stats, Stats()
    return stats

  def count_dropped_reply(self) -> None:
    with self._stats_lock:
      self._stats.dropped_replies += 1

  # The server's thread.

  def _serve(self):
    try:
      while True:
        batch = self._next_batch()
        if batch is None:
          return
        self._refresh_weights()
        self._run(batch)
    except BaseException as e:  # Said once; every later request hears it.
      self.error = e
      self._log(f"The inference server stopped: {e!r}")
      while True:
        try:
          request = self._requests.get_nowait()
        except queue.Empty:
          break
        if request is not _STOP:
          request.reply({"error": f"the inference server failed: {e!r}"}, {})
      raise

  def _next_batch(self) -> Optional[list[Request]]:
    first = self._requests.get()
    if first is _STOP:
      return None
    batch, size = [first], len(first.slots)
    deadline = first.arrived + self.max_wait_s
    while size < self.max_batch:
      remaining = deadline - time.monotonic()
      try:
        request = (self._requests.get(timeout=remaining) if remaining > 0
                   else self._requests.get_nowait())
      except queue.Empty:
        break
      if request is _STOP:
        self._requests.put(_STOP)  # Stop after this batch.
        break
      batch.append(request)
      size += len(request.slots)
    return batch

  def _refresh_weights(self):
    """Refreshes the weights from the latest publication; before the first
    one, waits for it (the batch's actors wait meanwhile)."""
    if (self._publication is not None and
        time.monotonic() - self._last_look < self._refresh_interval_s):
      return
    while True:
      try:
        publication = self.weights.publication()
        break
      except weights_runtime.WeightsNotPublishedError:
        time.sleep(0.05)
    self._last_look = time.monotonic()
    if publication != self._publication:
      flat, version = self.weights.read()
      with self._on_device():
        weights_runtime.unflatten_into(self._variables, flat)
      self._publication, self.version = publication, version

  def _run(self, batch: list[Request]):
    start = time.monotonic()
    acts = {False: [], True: []}
    for request in batch:
      if request.kind == "act":
        acts[bool(request.channels_first)].append(request)
      elif request.kind == "value":
        self._answer(self._value, [request])
      else:
        request.reply({"error": f"unknown request kind {request.kind!r}; "
                                "expected act or value"}, {})
    for group in acts.values():
      if group:
        self._answer(self._act, group)
    with self._stats_lock:
      stats = self._stats
      stats.batches += 1
      stats.requests += len(batch)
      stats.environments += sum(len(r.slots) for r in batch)
      stats.wait_s += sum(start - r.arrived for r in batch)
      stats.compute_s += time.monotonic() - start

  def _answer(self, compute, requests):
    """Runs `compute` on `requests` and replies to each; a request the
    policy cannot take (wrong shapes or dtypes: another network or suite)
    gets the error, and the server goes on."""
    try:
      replies = compute(requests)
    except (ValueError, TypeError, KeyError,
            tf.errors.InvalidArgumentError) as e:
      message = (f"the inference server could not evaluate the policy on "
                 f"this request ({type(e).__name__}: "
                 f"{str(e).strip().splitlines()[0] if str(e) else ''}); "
                 "is the actor running the same experiment as the learner?")
      for request in requests:
        request.reply({"error": message}, {})
      return
    for request, (meta, arrays) in zip(requests, replies):
      request.reply(meta, arrays)

  def _grow(self, slots: np.ndarray):
    need = int(slots.max()) + 1 if len(slots) else 0
    if need > len(self._hidden):
      size = max(need, 2 * len(self._hidden))
      for name in ("_hidden", "_cell"):
        old = getattr(self, name)
        new = np.zeros((size, networks.CORE_SIZE), np.float32)
        new[:len(old)] = old
        setattr(self, name, new)

  def _inputs(self, requests, names):
    """The requests' arrays `names` and observations, concatenated."""
    cat = lambda key: np.concatenate([r.arrays[key] for r in requests])
    values = [cat(name) for name in names]
    observation = {name: cat(f"obs/{name}") for name in self._names}
    return values, observation

  def _states(self, requests, slots):
    """The core state each request acts from: its own, or the table's."""
    if not self.use_lstm:
      return ()
    self._grow(slots)
    hidden, cell = self._hidden[slots], self._cell[slots]
    at = 0
    for request in requests:
      n = len(request.slots)
      if "state_h" in request.arrays:
        hidden[at:at + n] = request.arrays["state_h"]
        cell[at:at + n] = request.arrays["state_c"]
      at += n
    return snt.LSTMState(hidden=hidden, cell=cell)

  def _act(self, requests):
    slots = np.concatenate([r.slots for r in requests])
    (prev_action, reward, done, noise), observation = self._inputs(
        requests, ("prev_action", "reward", "done", "noise"))
    state = self._states(requests, slots)
    with self._on_device():
      action, logits, new_state = self._act_fn[requests[0].channels_first](
          tf.constant(prev_action), tf.constant(reward), tf.constant(done),
          {k: tf.constant(v) for k, v in observation.items()},
          tf.nest.map_structure(tf.constant, state), tf.constant(noise))
    action, logits = action.numpy(), logits.numpy()
    if self.use_lstm:
      self._hidden[slots] = new_state.hidden.numpy()
      self._cell[slots] = new_state.cell.numpy()
    replies, at = [], 0
    for request in requests:
      n = len(request.slots)
      arrays = {"action": action[at:at + n], "logits": logits[at:at + n]}
      if request.want_state and self.use_lstm:
        arrays.update(state_h=state.hidden[at:at + n],
                      state_c=state.cell[at:at + n])
      replies.append(({"version": self.version}, arrays))
      at += n
    return replies

  def _value(self, requests):
    slots = np.concatenate([r.slots for r in requests])
    (prev_action, reward), observation = self._inputs(
        requests, ("prev_action", "reward"))
    state = self._states(requests, slots)
    with self._on_device():
      values = self._value_fn(
          tf.constant(prev_action), tf.constant(reward),
          {k: tf.constant(v) for k, v in observation.items()},
          tf.nest.map_structure(tf.constant, state)).numpy()
    return [({"version": self.version}, {"value": values})]


class InferenceReport(base.LoopPart):
  """The learner loop's part for a run with central inference: a line on
  the server's batches every `interval_s` and its totals at the end (the
  server itself is started and stopped by the role that runs it)."""

  def __init__(self, server: InferenceServer, interval_s: float = 60.0,
               log: Optional[Callable[[str], None]] = None,
               who: str = "Learner: inference"):
    self._server = server
    self._who = who
    self._interval_s = interval_s
    self._log = log or server._log  # pylint: disable=protected-access
    self._last = time.monotonic()
    self._total = Stats()

  def _take(self) -> Stats:
    stats = self._server.take_stats()
    for field in dataclasses.fields(Stats):
      setattr(self._total, field.name, getattr(self._total, field.name) +
              getattr(stats, field.name))
    return stats

  def tick(self, loop, now: float) -> None:
    del loop
    if time.monotonic() - self._last >= self._interval_s:
      self._last = time.monotonic()
      self._log(f"{self._who}: {self._take().line()} in the last "
                f"{self._interval_s:g} s.")

  def end(self, loop) -> None:
    del loop
    self._take()
    self._log(f"{self._who}: {self._total.line()} in the whole run.")
