"""The actor: steps a batch of environments with a CPU copy of the policy.

`Actor.unroll()` returns one trajectory per environment in the layout of
`trajectory.specs` (batch-major `[N, T+1, ...]`). Consecutive unrolls overlap
by one step: step 0 of an unroll is the last step of the previous one, with
the behaviour logits the action was actually drawn from and the core state
before that step, so the learner can recompute everything from the
trajectory alone (the paper's Sec. 3 and its code's ActorOutput).
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from impala_tf import envs
from impala_tf import networks
from impala_tf import trajectory


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
  """

  def __init__(self, env: envs.BatchedEnv, network: networks.ImpalaNetwork,
               unroll_length: int, level_ids: Optional[Sequence[int]] = None,
               seed: int = 0):
    self.env = env
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
    # Only the observations the network reads travel to the learner.
    self._observation_names = ["frame"] + (
        ["instruction"] if network.use_instruction else [])
    observation_spec = {name: env.observation_spec[name]
                        for name in self._observation_names}
    self._specs = trajectory.specs(self.unroll_length, env.num_actions,
                                   observation_spec, network.use_lstm)
    # The step that the next unroll starts with (see the module docstring).
    self._first: Optional[dict] = None
    self._pending_action = None
    self._state_after_first = None

  @property
  def specs(self) -> dict[str, tf.TensorSpec]:
    """Field specs of one trajectory this actor produces."""
    return self._specs

  def _policy_step(self, prev_action, reward, done, observation, state):
    inputs = networks.AgentInput(prev_action, reward, done, observation)
    outputs, new_state = self.network(inputs, state)
    seeds = self._rng.make_seeds(1)[:, 0]
    action = tf.random.stateless_categorical(outputs.policy_logits, 1,
                                             seed=seeds, dtype=tf.int32)[:, 0]
    return action, outputs.policy_logits, new_state

  def _act(self, prev_action, env_output: envs.EnvOutput, state):
    action, logits, new_state = self._policy(
        tf.constant(prev_action), tf.constant(env_output.reward),
        tf.constant(env_output.done),
        {k: tf.constant(env_output.observation[k])
         for k in self._observation_names},
        state)
    return action.numpy(), logits.numpy(), new_state

  def _record(self, env_output, prev_action, logits):
    step = {k: env_output.observation[k] for k in self._observation_names}
    step.update(reward=env_output.reward, done=env_output.done,
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
                       state=state)
    self._pending_action = action
    self._state_after_first = state_after

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
      action, logits, state = self._act(prev_action, env_output, state)
      steps.append(self._record(env_output, prev_action, logits))
    self._first = dict(step=steps[-1], state=step_state)
    self._pending_action = action
    self._state_after_first = state

    result = {name: np.stack([s[name] for s in steps], axis=1)
              for name in steps[0]}
    n = self.env.num_envs
    if self.network.use_lstm:
      result["core_state_c"] = np.asarray(initial_state.cell)
      result["core_state_h"] = np.asarray(initial_state.hidden)
    result["level_id"] = self.level_ids.copy()
    result["policy_version"] = np.full(n, policy_version, np.int64)
    return {name: np.asarray(value, self._specs[name].dtype.as_numpy_dtype)
            for name, value in result.items()}
