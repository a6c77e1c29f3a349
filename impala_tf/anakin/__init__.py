"""Acting and learning in one compiled program (the Podracer report's
"Anakin"), for environments written in TensorFlow (`impala_tf.tfenvs`).

Each replica of the learner's `tf.distribute` strategy steps its own batch
of environments for an unroll with the current network, builds the same
trajectory batch `[B, T+1, ...]` an actor sends (`agent.trajectory.specs`),
and hands it to the learner's own replica step (`Learner._replica_step`:
V-trace, the losses, the all-reduced gradients, RMSProp and the divergence
guard): there is no second copy of the update, and no process, queue or
host round trip. `Anakin.train` runs several such iterations per call.

The behaviour logits are the network's own at acting time, one update
behind at most: step 0 of an unroll (the last step of the one before) is
acted on again with the current weights, so a whole unroll comes from one
set of weights and the policy lag is 0.
"""

from typing import Any, NamedTuple

import tensorflow as tf

from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf import tfenvs


class Carry(NamedTuple):
  """What one replica carries from an unroll to the next."""
  episodes: Any              # tfenvs.Episodes
  output: Any                # tfenvs.StepOutput: the step the next starts at.
  prev_action: tf.Tensor     # [B] int32: the action that led to it.
  core_state: Any            # The LSTM state before it (() without LSTM).
  seed: tf.Tensor            # [2] int32: the action sampler's seed.


class Anakin:
  """Trains `learner`'s network on `env`, acting and learning in one program.

  Args:
    env: the environment, written in TensorFlow.
    learner: a `agent.learner.Learner` for `env`'s observations and actions;
      its strategy's replicas each step `envs_per_replica` environments.
    envs_per_replica: environments per replica, its share of the batch.
    seed: seeds the environments (each replica its own) and the actions.
  """

  def __init__(self, env: tfenvs.TFEnvironment, learner: learner_lib.Learner,
               envs_per_replica: int, seed: int = 0):
    self.env = env
    self.learner = learner
    self.config = learner.config
    self.envs_per_replica = int(envs_per_replica)
    self._seed = int(seed)
    self._observation_names = list(env.observation_spec)
    self._train = tf.function(self._train_fn)

  @property
  def frames_per_iteration(self) -> int:
    """Frames one iteration adds (all replicas)."""
    replicas = self.learner.strategy.num_replicas_in_sync
    return (replicas * self.envs_per_replica * self.config.unroll_length *
            self.config.frames_per_step)

  def initial_carry(self):
    """Every replica's environments reset, each with its own seed."""
    network = self.learner.network

    def start(context):
      replica = context.replica_id_in_sync_group
      seed = tf.constant([self._seed, replica], tf.int32)
      env_seed, action_seed = tfenvs.split_seed(seed)
      episodes, output = tfenvs.reset_batch(self.env, env_seed,
                                            self.envs_per_replica)
      return Carry(episodes, output,
                   tf.zeros([self.envs_per_replica], tf.int32),
                   network.initial_state(self.envs_per_replica), action_seed)

    return self.learner.strategy.experimental_distribute_values_from_function(
        start)

  def train(self, carry, iterations: int):
    """`iterations` unrolls and updates per replica; returns (the last
    update's logs, the carry for the next call)."""
    # A Python count: the loop is unrolled in the trace (a distributed
    # carry cannot be a `tf.while_loop` variable), one trace per count.
    return self._train(carry, int(iterations))

  # --------------------------------------------------------- in the graph

  def _train_fn(self, carry, iterations):
    learner = self.learner
    strategy = learner.strategy
    logs = None
    for _ in range(iterations):
      learning_rate = learner.learning_rate(learner.num_frames)
      replica_logs, carry = strategy.run(self._replica_iteration,
                                         args=(carry, learning_rate))
      logs = strategy.experimental_local_results(replica_logs)[0]
      learner.num_frames.assign_add(self.frames_per_iteration)
      learner.num_updates.assign_add(tf.cast(logs["finite"], tf.int64))
    return logs, carry

  def _replica_iteration(self, carry: Carry, learning_rate):
    batch, carry = self._unroll(carry)
    logs = self.learner._replica_step(batch, learning_rate)  # pylint: disable=protected-access
    # The games that ended in this unroll (step 0 was counted before).
    returns = batch["episode_return"][:, 1:]
    ended = tf.math.is_finite(returns)
    context = tf.distribute.get_replica_context()
    logs["episodes"] = context.all_reduce(
        tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.cast(ended, tf.float32)))
    logs["episode_return_sum"] = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        tf.reduce_sum(tf.where(ended, returns, 0.0)))
    return logs, carry

  def _act(self, carry_seed, prev_action, output, state):
    inputs = networks.AgentInput(
        prev_action=prev_action, reward=output.reward, done=output.done,
        observation={name: output.observation[name]
                     for name in self._observation_names})
    outputs, new_state = self.learner.network(inputs, state)
    carry_seed, draw = tfenvs.split_seed(carry_seed)
    action = tf.random.stateless_categorical(
        outputs.policy_logits, 1, seed=draw, dtype=tf.int32)[:, 0]
    return carry_seed, action, outputs.policy_logits, new_state

  def _bootstrap(self, prev_action, output, state):
    """γ·V(the last observation) where a game was truncated, else 0."""
    def values():
      inputs = networks.AgentInput(
          prev_action=prev_action, reward=output.reward,
          done=tf.zeros_like(output.done),
          observation={name: output.final_observation[name]
                       for name in self._observation_names})
      outputs, _ = self.learner.network(inputs, state)
      return tf.where(output.truncated,
                      self.config.discount * outputs.baseline, 0.0)
    return tf.cond(tf.reduce_any(output.truncated), values,
                   lambda: tf.zeros_like(output.reward))

  def _record(self, output, prev_action, logits, bootstrap):
    step = {name: output.observation[name]
            for name in self._observation_names}
    step.update(reward=output.reward, done=output.done,
                prev_action=prev_action, behaviour_logits=logits,
                episode_return=output.episode_return,
                episode_length=output.episode_length, bootstrap=bootstrap)
    return step

  def _unroll(self, carry: Carry):
    """`[B, T+1, ...]` trajectories from the carry's step on, and the carry
    for the next unroll."""
    network = self.learner.network
    seed, action, logits, state = self._act(
        carry.seed, carry.prev_action, carry.output, carry.core_state)
    first = self._record(carry.output, carry.prev_action, logits,
                         tf.zeros_like(carry.output.reward))
    arrays = {name: tf.TensorArray(value.dtype, self.config.unroll_length + 1,
                                   element_shape=value.shape)
              for name, value in first.items()}
    arrays = {name: array.write(0, first[name])
              for name, array in arrays.items()}
    episodes, output, prev_action = carry.episodes, carry.output, carry.prev_action
    state_before = carry.core_state
    for t in tf.range(1, self.config.unroll_length + 1):
      episodes, output = tfenvs.step_batch(self.env, episodes, action)
      prev_action = action
      state_before = state
      bootstrap = self._bootstrap(prev_action, output, state)
      seed, action, logits, state = self._act(seed, prev_action, output,
                                              state)
      step = self._record(output, prev_action, logits, bootstrap)
      arrays = {name: array.write(t, step[name])
                for name, array in arrays.items()}
    batch = {name: tf.transpose(
        array.stack(), [1, 0] + list(range(2, len(first[name].shape) + 1)))
             for name, array in arrays.items()}
    size = self.envs_per_replica
    if network.use_lstm:
      batch["core_state_c"] = carry.core_state.cell
      batch["core_state_h"] = carry.core_state.hidden
    batch["level_id"] = tf.zeros([size], tf.int32)
    batch["policy_version"] = tf.zeros([size], tf.int64)
    batch["actor_id"] = tf.zeros([size], tf.int32)
    # The next unroll starts at this one's last step, acted on again.
    return batch, Carry(episodes, output, prev_action, state_before, seed)

