"""The actor: steps a batch of environments with a CPU copy of the policy.

`Actor.unroll()` returns one trajectory per environment in the layout of
`trajectory.specs` (batch-major `[N, T+1, ...]`). Consecutive unrolls overlap
by one step: step 0 of an unroll is the last step of the previous one, with
the behaviour logits the action was actually drawn from and the core state
before that step, so the learner can recompute everything from the
trajectory alone (the paper's Sec. 3 and its code's ActorOutput).

An environment whose frame is a stack of the last S frames (`frame_stack`
> 1, Atari) sends each frame once (`trajectory.FrameStackEncoder`).
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from impala_tf.acting import envs
from impala_tf.config import experiment
from impala_tf.agent import networks
from impala_tf.agent import trajectory


class Actor:
  """Runs a policy on a `BatchedEnv` and cuts its experience into unrolls.

  Args:
    env: the batched environment (`envs.BatchedEnv`).
    network: the actor's own copy of the network; refresh its variables
      between unrolls (e.g. `runtime.weights.unflatten_into`).
    unroll_length: `T`.
    level_ids: int `[N]`, the level index of each environment (recorded in
      every trajectory); default all zeros.
    seed: seeds action sampling.
    actor_id: this actor's index, recorded in every trajectory.
    discount: γ, for the return of an episode cut short by a time limit
      (`envs.EnvOutput.truncated`): the trajectory's "bootstrap" is γ·V of
      its last observation.
  """

  def __init__(self, env: envs.BatchedEnv, network: networks.ImpalaNetwork,
               unroll_length: int, level_ids: Optional[Sequence[int]] = None,
               seed: int = 0, actor_id: int = 0, discount: float = 0.99):
    self.env = env
    self.actor_id = int(actor_id)
    self.network = network
    self.unroll_length = int(unroll_length)
    n = env.num_envs
    self.level_ids = (np.zeros(n, np.int32) if level_ids is None
                      else np.asarray(level_ids, np.int32))
    if self.level_ids.shape != (n,):
      raise ValueError(f"level_ids must have one entry per environment "
                       f"({n}), got shape {self.level_ids.shape}.")
    self._rng = tf.random.Generator.from_seed(seed)
    self._policy = tf.function(self._policy_step)
    self._value = tf.function(self._value_step)
    self._discount = float(discount)
    # The policy step traced once per frame layout: calling the concrete
    # function skips tf.function's per-call matching of the arguments to a
    # trace (0.2 of 1.7 ms per step of 16 Pong environments,
    # docs/benchmarks.md); an actor's shapes and dtypes never change.
    self._traced: dict[bool, tf.types.experimental.ConcreteFunction] = {}
    self._observation_names = experiment.observations_sent(
        env.observation_spec, network.use_instruction)
    observation_spec = {name: env.observation_spec[name]
                        for name in self._observation_names}
    frame_stack = int(getattr(env, "frame_stack", 1))
    self._specs = trajectory.specs(self.unroll_length, env.num_actions,
                                   observation_spec, network.use_lstm,
                                   frame_stack=frame_stack)
    self._stacks = (trajectory.FrameStackEncoder(frame_stack)
                    if frame_stack > 1 else None)
    # The step that the next unroll starts with (see the module docstring).
    self._first: Optional[dict] = None
    self._pending_action = None
    self._state_after_first = None
    # Steps where the policy's logits were not finite (see `_act`).
    self.broken_policy_steps = 0

  @property
  def specs(self) -> dict[str, tf.TensorSpec]:
    """Field specs of one trajectory this actor produces."""
    return self._specs

  def _policy_step(self, prev_action, reward, done, observation, state,
                   channels_first=False):
    inputs = networks.AgentInput(prev_action, reward, done, observation)
    # Only a channels-first frame needs the network's keyword, so a
    # network without it (a stand-in, a user's own) still takes
    # channels-last frames.
    extra = {"frames_channels_first": True} if channels_first else {}
    outputs, new_state = self.network(inputs, state, **extra)
    seeds = self._rng.make_seeds(1)[:, 0]
    action = tf.random.stateless_categorical(outputs.policy_logits, 1,
                                             seed=seeds, dtype=tf.int32)[:, 0]
    return action, outputs.policy_logits, new_state

  def _value_step(self, prev_action, reward, done, observation, state):
    inputs = networks.AgentInput(prev_action, reward, done, observation)
    outputs, _ = self.network(inputs, state)
    return outputs.baseline

  def _bootstrap(self, prev_action, env_output: envs.EnvOutput, state
                 ) -> np.ndarray:
    """float32 `[N]`: γ·V(last observation) where an episode was truncated
    by this step, 0 elsewhere (Pardo et al., 2018). The value is the one
    the policy would give that observation, in the episode's own state."""
    bootstrap = np.zeros(self.env.num_envs, np.float32)
    truncated = env_output.truncated
    if truncated is None or not truncated.any():
      return bootstrap
    observation = {k: tf.constant(env_output.final_observation[k])
                   for k in self._observation_names}
    values = self._value(tf.constant(prev_action),
                         tf.constant(env_output.reward),
                         tf.zeros_like(tf.constant(env_output.done)),
                         observation, state).numpy()
    bootstrap[truncated] = self._discount * values[truncated]
    return bootstrap

  def _act(self, prev_action, env_output: envs.EnvOutput, state):
    observation = {k: env_output.observation[k]
                   for k in self._observation_names}
    # A channels-last frame that is a transposed view of channels-first
    # memory (ale-py's) goes in as that memory and the network transposes
    # it while it scales it: numpy's strided copy costs more
    # (docs/benchmarks.md).
    channels_first = np.moveaxis(observation["frame"], -1, 1)
    use_channels_first = (channels_first.flags.c_contiguous and
                          not observation["frame"].flags.c_contiguous)
    if use_channels_first:
      observation["frame"] = channels_first
    inputs = (tf.constant(prev_action), tf.constant(env_output.reward),
              tf.constant(env_output.done),
              {k: tf.constant(v) for k, v in observation.items()}, state)
    policy = self._traced.get(use_channels_first)
    if policy is None:
      policy = self._policy.get_concrete_function(
          *inputs, channels_first=use_channels_first)
      self._traced[use_channels_first] = policy
    action, logits, new_state = policy(
        *inputs, channels_first=use_channels_first)
    action, logits = action.numpy(), logits.numpy()
    broken = ~np.isfinite(logits).all(axis=1)
    if broken.any():
      # The policy is broken (its logits are NaN or infinite), not the
      # environment: sampling from such logits gives an action index that
      # does not exist. Play a valid action and send the step with its
      # logits: the learner's update is then non-finite and its divergence
      # guard, which sees every actor, decides whether the run is over.
      action = np.where(broken, 0, action).astype(action.dtype)
      self.broken_policy_steps += int(broken.sum())
    return action, logits, new_state

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
    state = self.network.initial_state(self.env.num_envs)
    prev_action = np.zeros(self.env.num_envs, np.int32)
    action, logits, state_after = self._act(prev_action, env_output, state)
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
    action, logits, state_after = self._act(prev_action, env_output,
                                            self._first["state"])
    self._first["step"]["behaviour_logits"] = logits
    self._pending_action = action
    self._state_after_first = state_after

  def _frame_history(self):
    """The older frames of the stacks recorded last (None if unstacked)."""
    return None if self._stacks is None else self._stacks.history()

  def unroll(self, policy_version: int = 0) -> dict[str, np.ndarray]:
    """Steps every environment `T` times; returns `[N, T+1, ...]` arrays."""
    if self._first is None:
      self._start()
    steps = [self._first["step"]]
    initial_state = self._first["state"]
    state = self._state_after_first
    action = self._pending_action
    for _ in range(self.unroll_length):
      env_output = self.env.step(action)
      prev_action = action
      step_state = state
      bootstrap = self._bootstrap(prev_action, env_output, state)
      action, logits, state = self._act(prev_action, env_output, state)
      steps.append(self._record(env_output, prev_action, logits, bootstrap))
    history = self._first["history"]
    self._first = dict(step=steps[-1], state=step_state,
                       history=self._frame_history(),
                       inputs=(prev_action, env_output))
    self._pending_action = action
    self._state_after_first = state

    result = {name: np.stack([s[name] for s in steps], axis=1)
              for name in steps[0]}
    n = self.env.num_envs
    if self.network.use_lstm:
      result["core_state_c"] = np.asarray(initial_state.cell)
      result["core_state_h"] = np.asarray(initial_state.hidden)
    if history is not None:
      result["frame_history"] = history
    result["level_id"] = self.level_ids.copy()
    result["policy_version"] = np.full(n, policy_version, np.int64)
    result["actor_id"] = np.full(n, self.actor_id, np.int32)
    return {name: np.asarray(value, self._specs[name].dtype.as_numpy_dtype)
            for name, value in result.items()}
