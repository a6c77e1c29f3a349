"""The actor: steps a batch of environments with a CPU copy of the policy.

`Actor.unroll()` returns one trajectory per environment in the layout of
`trajectory.specs` (batch-major `[N, T+1, ...]`). Consecutive unrolls overlap
by one step: step 0 of an unroll is the last step of the previous one, with
the behaviour logits the action was actually drawn from and the core state
before that step, so the learner can recompute everything from the
trajectory alone (the paper's Sec. 3 and its code's ActorOutput).

An environment whose frame is a stack of the last S frames (`frame_stack`
> 1, Atari) sends each frame once (`trajectory.FrameStackEncoder`).

Who evaluates the policy is the actor's `policy`: its own copy of the
network (`LocalPolicy`, the paper's actors) or a central inference server
that batches the steps of every actor and keeps their core states
(`impala_tf.inference.RemotePolicy`, `--inference=central`). Actions are
drawn the same way in both, by the Gumbel-max trick with noise this actor
draws for each of its environments: the same weights and observations give
the same actions wherever the policy runs and whatever it was batched with.
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from impala_tf.acting import envs
from impala_tf.config import experiment
from impala_tf.agent import networks
from impala_tf.agent import trajectory


class LocalPolicy:
  """The policy evaluated by the actor's own copy of the network.

  `act` and `value` take and return numpy arrays and the core state
  (`network.initial_state`'s structure); see `Actor`.
  """

  version = None  # The caller knows the weights it copied in.

  def __init__(self, network: networks.ImpalaNetwork):
    self.network = network
    self.use_lstm = network.use_lstm
    self.use_instruction = network.use_instruction
    self._policy = tf.function(self._policy_step)
    self._value = tf.function(self._value_step)
    # The policy step traced once per frame layout: calling the concrete
    # function skips tf.function's per-call matching of the arguments to a
    # trace (0.2 of 1.7 ms per step of 16 Pong environments,
    # docs/benchmarks.md); an actor's shapes and dtypes never change.
    self._traced: dict[bool, tf.types.experimental.ConcreteFunction] = {}

  def initial_state(self, batch_size: int):
    return self.network.initial_state(batch_size)

  def _policy_step(self, prev_action, reward, done, observation, state, noise,
                   channels_first=False):
    return policy_step(self.network, prev_action, reward, done, observation,
                       state, noise, channels_first)

  def _value_step(self, prev_action, reward, done, observation, state):
    inputs = networks.AgentInput(prev_action, reward, done, observation)
    outputs, _ = self.network(inputs, state)
    return outputs.baseline

  def act(self, prev_action, reward, done, observation, state, noise,
          want_state_before=False):
    """(action, logits, new state, state before the step or None): one
    step of the policy for every environment."""
    del want_state_before  # The caller holds `state` itself.
    observation, channels_first = frames_as_stored(observation)
    inputs = (tf.constant(prev_action), tf.constant(reward),
              tf.constant(done),
              {k: tf.constant(v) for k, v in observation.items()}, state,
              tf.constant(noise))
    policy = self._traced.get(channels_first)
    if policy is None:
      policy = self._policy.get_concrete_function(
          *inputs, channels_first=channels_first)
      self._traced[channels_first] = policy
    action, logits, new_state = policy(*inputs, channels_first=channels_first)
    return action.numpy(), logits.numpy(), new_state, state

  def value(self, prev_action, reward, observation, state) -> np.ndarray:
    """V(observation) in `state` for every environment (no step taken)."""
    return self._value(tf.constant(prev_action), tf.constant(reward),
                       tf.zeros(len(reward), tf.bool),
                       {k: tf.constant(v) for k, v in observation.items()},
                       state).numpy()


def policy_step(network, prev_action, reward, done, observation, state, noise,
                channels_first=False):
  """(action, logits, new state): the network's step, and the action drawn
  by the Gumbel-max trick, argmax(logits + noise), with `noise` float32
  `[B, A]` standard Gumbel draws. The actor's step and the inference
  server's (`impala_tf.inference`) are this one function."""
  inputs = networks.AgentInput(prev_action, reward, done, observation)
  # Only a channels-first frame needs the network's keyword, so a network
  # without it (a stand-in, a user's own) still takes channels-last frames.
  extra = {"frames_channels_first": True} if channels_first else {}
  outputs, new_state = network(inputs, state, **extra)
  logits = outputs.policy_logits
  action = tf.argmax(logits + tf.cast(noise, logits.dtype), axis=-1,
                     output_type=tf.int32)
  return action, logits, new_state


def frames_as_stored(observation: dict) -> tuple[dict, bool]:
  """(observation, channels_first): a channels-last frame that is a
  transposed view of channels-first memory (ale-py's) goes on as that
  memory, and the network transposes it while it scales it: numpy's
  strided copy costs more (docs/benchmarks.md)."""
  frame = observation.get("frame")
  if frame is None or frame.ndim != 4:
    return observation, False
  channels_first = np.moveaxis(frame, -1, 1)
  if channels_first.flags.c_contiguous and not frame.flags.c_contiguous:
    return dict(observation, frame=channels_first), True
  return observation, False


class Actor:
  """Runs a policy on a `BatchedEnv` and cuts its experience into unrolls.

  Args:
    env: the batched environment (`envs.BatchedEnv`).
    network: the actor's own copy of the network (refresh its variables
      between unrolls, e.g. `runtime.weights.unflatten_into`), or a policy
      evaluated elsewhere (`impala_tf.inference.RemotePolicy`), which
      keeps the core states and says which weights acted.
    unroll_length: `T`.
    level_ids: int `[N]`, the level index of each environment (recorded in
      every trajectory); default all zeros.
    seed: seeds action sampling.
    actor_id: this actor's index, recorded in every trajectory.
    discount: γ, for the return of an episode cut short by a time limit
      (`envs.EnvOutput.truncated`): the trajectory's "bootstrap" is γ·V of
      its last observation.
  """

  def __init__(self, env: envs.BatchedEnv, network, unroll_length: int,
               level_ids: Optional[Sequence[int]] = None,
               seed: int = 0, actor_id: int = 0, discount: float = 0.99):
    self.env = env
    self.actor_id = int(actor_id)
    if hasattr(network, "act"):  # A policy, not a network.
      self.policy = network
      self.network = getattr(network, "network", None)
    else:
      self.policy = LocalPolicy(network)
      self.network = network
    self.unroll_length = int(unroll_length)
    n = env.num_envs
    self.level_ids = (np.zeros(n, np.int32) if level_ids is None
                      else np.asarray(level_ids, np.int32))
    if self.level_ids.shape != (n,):
      raise ValueError(f"level_ids must have one entry per environment "
                       f"({n}), got shape {self.level_ids.shape}.")
    # The Gumbel noise of every step's action draws (see the module
    # docstring).
    self._noise = np.random.Generator(np.random.Philox(seed))
    self._discount = float(discount)
    self._observation_names = experiment.observations_sent(
        env.observation_spec, self.policy.use_instruction)
    observation_spec = {name: env.observation_spec[name]
                        for name in self._observation_names}
    frame_stack = int(getattr(env, "frame_stack", 1))
    self._specs = trajectory.specs(self.unroll_length, env.num_actions,
                                   observation_spec, self.policy.use_lstm,
                                   frame_stack=frame_stack)
    self._stacks = (trajectory.FrameStackEncoder(frame_stack)
                    if frame_stack > 1 else None)
    # The step that the next unroll starts with (see the module docstring).
    self._first: Optional[dict] = None
    self._pending_action = None
    self._state_after_first = None
    # The oldest weights version whose logits are in the unroll under way
    # (a policy evaluated elsewhere says which acted; None: the caller's).
    self._oldest_version = None
    # Steps where the policy's logits were not finite (see `_act`).
    self.broken_policy_steps = 0

  @property
  def specs(self) -> dict[str, tf.TensorSpec]:
    """Field specs of one trajectory this actor produces."""
    return self._specs

  def _bootstrap(self, prev_action, env_output: envs.EnvOutput, state
                 ) -> np.ndarray:
    """float32 `[N]`: γ·V(last observation) where an episode was truncated
    by this step, 0 elsewhere (Pardo et al., 2018). The value is the one
    the policy would give that observation, in the episode's own state."""
    bootstrap = np.zeros(self.env.num_envs, np.float32)
    truncated = env_output.truncated
    if truncated is None or not truncated.any():
      return bootstrap
    observation = {k: env_output.final_observation[k]
                   for k in self._observation_names}
    values = self.policy.value(prev_action, env_output.reward, observation,
                               state)
    bootstrap[truncated] = self._discount * values[truncated]
    return bootstrap

  def _act(self, prev_action, env_output: envs.EnvOutput, state,
           want_state_before=False):
    """(action, logits, new state, state before the step): the policy's
    step (`LocalPolicy.act`)."""
    observation = {k: env_output.observation[k]
                   for k in self._observation_names}
    noise = self._noise.gumbel(
        size=(self.env.num_envs, self.env.num_actions)).astype(np.float32)
    action, logits, new_state, state_before = self.policy.act(
        prev_action, env_output.reward, env_output.done, observation, state,
        noise, want_state_before=want_state_before)
    version = self.policy.version
    if version is not None:
      self._oldest_version = (version if self._oldest_version is None else
                              min(self._oldest_version, version))
    broken = ~np.isfinite(logits).all(axis=1)
    if broken.any():
      # The policy is broken (its logits are NaN or infinite), not the
      # environment: the action drawn from such logits means nothing. Play
      # a valid action and send the step with its logits: the learner's
      # update is then non-finite and its divergence guard, which sees
      # every actor, decides whether the run is over.
      action = np.where(broken, 0, action).astype(action.dtype)
      self.broken_policy_steps += int(broken.sum())
    return action, logits, new_state, state_before

  def _record(self, env_output, prev_action, logits, bootstrap=None):
    observation = env_output.observation
    step = {k: observation[k] for k in self._observation_names}
    if self._stacks is not None:
      step.update(self._stacks.encode(step.pop("frame"), env_output.done))
    step.update(bootstrap=(np.zeros(len(env_output.done), np.float32)
                           if bootstrap is None else bootstrap),
                reward=env_output.reward, done=env_output.done,
                prev_action=prev_action, behaviour_logits=logits,
                episode_return=env_output.episode_return,
                episode_length=env_output.episode_length)
    return step

  def _start(self):
    env_output = self.env.reset()
    state = self.policy.initial_state(self.env.num_envs)
    prev_action = np.zeros(self.env.num_envs, np.int32)
    action, logits, state_after, _ = self._act(prev_action, env_output, state)
    self._first = dict(step=self._record(env_output, prev_action, logits),
                       state=state, history=self._frame_history(),
                       inputs=(prev_action, env_output))
    self._pending_action = action
    self._state_after_first = state_after

  def refresh_first_step(self):
    """Acts again at the step the next unroll starts with, with the
    network's current weights: its action (not yet played) and behaviour
    logits then come from the same weights as the rest of the unroll (a
    controlled policy lag needs that; otherwise the step keeps the previous
    unroll's action, as the paper's actors do)."""
    if self._first is None:
      return
    prev_action, env_output = self._first["inputs"]
    self._oldest_version = None
    action, logits, state_after, _ = self._act(prev_action, env_output,
                                               self._first["state"])
    self._first["step"]["behaviour_logits"] = logits
    self._pending_action = action
    self._state_after_first = state_after

  def _frame_history(self):
    """The older frames of the stacks recorded last (None if unstacked)."""
    return None if self._stacks is None else self._stacks.history()

  def unroll(self, policy_version: Optional[int] = 0
             ) -> dict[str, np.ndarray]:
    """Steps every environment `T` times; returns `[N, T+1, ...]` arrays.

    `policy_version`: the weights version the unroll acts with, recorded in
    it; a policy evaluated elsewhere says which versions acted, and the
    oldest of them is recorded instead.
    """
    if self._first is None:
      self._start()
    steps = [self._first["step"]]
    initial_state = self._first["state"]
    state = self._state_after_first
    action = self._pending_action
    for i in range(self.unroll_length):
      env_output = self.env.step(action)
      prev_action = action
      bootstrap = self._bootstrap(prev_action, env_output, state)
      action, logits, state, step_state = self._act(
          prev_action, env_output, state,
          want_state_before=i == self.unroll_length - 1)
      steps.append(self._record(env_output, prev_action, logits, bootstrap))
    history = self._first["history"]
    self._first = dict(step=steps[-1], state=step_state,
                       history=self._frame_history(),
                       inputs=(prev_action, env_output))
    self._pending_action = action
    self._state_after_first = state
    if self._oldest_version is not None:
      policy_version = self._oldest_version
      # The next unroll's first step acted with the last version seen.
      self._oldest_version = self.policy.version

    result = {name: np.stack([s[name] for s in steps], axis=1)
              for name in steps[0]}
    n = self.env.num_envs
    if self.policy.use_lstm:
      result["core_state_c"] = np.asarray(initial_state.cell)
      result["core_state_h"] = np.asarray(initial_state.hidden)
    if history is not None:
      result["frame_history"] = history
    result["level_id"] = self.level_ids.copy()
    result["policy_version"] = np.full(n, policy_version, np.int64)
    result["actor_id"] = np.full(n, self.actor_id, np.int32)
    return {name: np.asarray(value, self._specs[name].dtype.as_numpy_dtype)
            for name, value in result.items()}
