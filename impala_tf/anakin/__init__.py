"""Acting and learning in one compiled program (the Podracer report's
"Anakin"), for environments written in TensorFlow (`impala_tf.tfenvs`).

Each replica of the learner's `tf.distribute` strategy steps its own batch
of environments for an unroll with the current network, builds the same
trajectory batch `[B, T+1, ...]` an actor sends (`agent.trajectory.specs`),
and hands it to the learner's own replica step (`Learner._replica_step`:
V-trace, the losses, the all-reduced gradients, RMSProp and the divergence
guard): there is no second copy of the update, and no process, queue or
host round trip. `Anakin.train` runs several such iterations per call.

The behaviour logits are the network's own at acting time: step 0 of an
unroll (the last step of the one before) is acted on again with the
current weights, so a whole unroll comes from one set of weights and the
policy lag is 0 (an LSTM's state at step 0 was computed by the weights
before the last update, as an actor's is).

`--run_mode=anakin` (`run`) trains a run this way inside the learner's own
loop (`learner_loop.run_loop` with an `AnakinSource`): the same run
directory, progress lines, summaries, checkpoints, resume, result.json and
exported policy as every other mode. A resumed run restores the network,
optimiser and counters; its environments start new games.
"""

import threading
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf

from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf.config import tf_levels
from impala_tf.learner_loop import base
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
    xla: compile each replica's unroll (the environments and the policy
      stepped T times) with XLA (the update's loss gradient is the
      learner's to compile: `Learner(xla_gradients=True)`; its all-reduce
      cannot sit inside an XLA cluster).
  """

  def __init__(self, env: tfenvs.TFEnvironment, learner: learner_lib.Learner,
               envs_per_replica: int, seed: int = 0, xla: bool = False):
    self.env = env
    self.learner = learner
    self.config = learner.config
    self.envs_per_replica = int(envs_per_replica)
    self._seed = int(seed)
    self._observation_names = list(env.observation_spec)
    self.xla = bool(xla)
    self._compiled_unroll = (tf.function(self._unroll, jit_compile=True)
                             if self.xla else self._unroll)
    self._train = tf.function(self._train_fn)
    self._train_loop = tf.function(self._train_loop_fn)

  @property
  def frames_per_iteration(self) -> int:
    """Frames one iteration adds (all replicas)."""
    replicas = self.learner.strategy.num_replicas_in_sync
    return (replicas * self.envs_per_replica * self.config.unroll_length *
            self.config.frames_per_step)

  def initial_carry(self):
    """Every replica's environments reset, each with its own seed. The
    seed folds in the learner's update count, so a resumed run does not
    replay the games it started with."""
    network = self.learner.network
    updates = tf.cast(self.learner.num_updates, tf.int32)

    def start(context):
      replica = context.replica_id_in_sync_group
      seed = tf.random.experimental.stateless_fold_in(
          tf.constant([self._seed, replica], tf.int32), updates,
          alg=tfenvs.RNG_ALG)
      env_seed, action_seed = tfenvs.split_seed(seed)
      episodes, output = tfenvs.reset_batch(self.env, env_seed,
                                            self.envs_per_replica)
      return Carry(episodes, output,
                   tf.zeros([self.envs_per_replica], tf.int32),
                   network.initial_state(self.envs_per_replica), action_seed)

    strategy = self.learner.strategy
    carry = strategy.experimental_distribute_values_from_function(start)
    if strategy.num_replicas_in_sync == 1:
      # The compiled program returns one replica's carry as plain tensors:
      # the same type here, or its second call would trace it again.
      carry = strategy.experimental_local_results(carry)[0]
    return carry

  def train(self, carry, iterations: int):
    """`iterations` unrolls and updates per replica.

    Returns:
      (logs, episode_return, carry): every update's scalar logs, each
      `[iterations]`; the returns of the games that ended,
      `[iterations, batch, T+1]` over all replicas (NaN elsewhere, step 0
      repeating the unroll before, as a learner's batch); the carry for
      the next call.
    """
    if self.learner.strategy.num_replicas_in_sync == 1:
      # One replica: a `tf.while_loop` over a count given as a tensor, one
      # trace for every count (a run's one-update calls near its frame
      # budget included, which would otherwise trace and compile anew).
      return self._train_loop(carry, tf.constant(int(iterations), tf.int32))
    # Several: a Python count, the loop unrolled in the trace (a
    # distributed carry cannot be a `tf.while_loop` variable), one trace
    # per count.
    return self._train(carry, int(iterations))

  # --------------------------------------------------------- in the graph

  def _iteration(self, carry):
    """One unroll and update on every replica: ((logs, returns over all
    replicas `[batch, T+1]`), carry)."""
    learner = self.learner
    strategy = learner.strategy
    learning_rate = learner.learning_rate(learner.num_frames)
    replica_logs, returns, carry = strategy.run(
        self._replica_iteration, args=(carry, learning_rate))
    # Every replica returns the same all-reduced logs.
    logs = strategy.experimental_local_results(replica_logs)[0]
    logs.update(learner.hyperparameter_logs(learning_rate))
    learner.num_frames.assign_add(self.frames_per_iteration)
    learner.num_updates.assign_add(tf.cast(logs.pop("applied"), tf.int64))
    returns = tf.concat(strategy.experimental_local_results(returns), axis=0)
    return (logs, returns), carry

  def _train_fn(self, carry, iterations):
    every = []
    for _ in range(iterations):
      outputs, carry = self._iteration(carry)
      every.append(outputs)
    logs, returns = tf.nest.map_structure(lambda *x: tf.stack(x), *every)
    return logs, returns, carry

  def _train_loop_fn(self, carry, iterations):
    (logs, returns), carry = loop(self._iteration, carry, iterations)
    return logs, returns, carry

  def _replica_iteration(self, carry: Carry, learning_rate):
    batch, carry = self._compiled_unroll(carry)
    logs = self.learner._replica_step(batch, learning_rate)  # pylint: disable=protected-access
    return logs, batch["episode_return"], carry

  def _act(self, carry_seed, prev_action, output, state):
    inputs = networks.AgentInput(
        prev_action=prev_action, reward=output.reward, done=output.done,
        observation={name: output.observation[name]
                     for name in self._observation_names})
    outputs, new_state = self.learner.network(inputs, state)
    carry_seed, draw = tfenvs.split_seed(carry_seed)
    # Gumbel-max: a draw from softmax(logits) with the environments' random
    # numbers (`stateless_categorical` draws others inside XLA).
    noise = tfenvs.uniform(tf.shape(outputs.policy_logits), draw, 0.0, 1.0)
    action = tf.argmax(outputs.policy_logits - tf.math.log(-tf.math.log(noise)),
                       axis=-1, output_type=tf.int32)
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
    episodes, output = carry.episodes, carry.output
    prev_action = carry.prev_action
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


def loop(iteration: Callable, carry, iterations):
  """`iteration(carry) -> (outputs, carry)` run `iterations` (a scalar
  tensor, at least 1) times in a `tf.while_loop`, in a `tf.function`;
  returns (every iteration's outputs stacked, the last carry). The carry
  must be plain tensors (one replica's), not distributed values."""
  # The first iteration gives the outputs' structure; the loop the rest.
  outputs, carry = iteration(carry)
  arrays = tf.nest.map_structure(
      lambda x: tf.TensorArray(x.dtype, iterations,
                               element_shape=x.shape).write(0, x), outputs)

  def body(i, carry, arrays):
    outputs, carry = iteration(carry)
    return i + 1, carry, tf.nest.map_structure(
        lambda array, x: array.write(i, x), arrays, outputs)

  _, carry, arrays = tf.while_loop(lambda i, *_: i < iterations, body,
                                   (tf.constant(1), carry, arrays))
  return tf.nest.map_structure(lambda array: array.stack(), arrays), carry


class AnakinSource:
  """The learner loop's update source in anakin mode (`loop.QueueSource`
  has the interface): each call of the compiled program gives `iterations`
  updates, handed to the loop's parts one by one; near the frame budget
  it runs one update per call, so a run stops at its budget as a learner
  fed by actors does (within one update)."""

  def __init__(self, trainer: Anakin, iterations: int):
    self.trainer = trainer
    self.iterations = int(iterations)
    self.compute_s = 0.0
    self._carry = None
    self._calls = 0

  def start(self, loop):
    del loop
    self._carry = self.trainer.initial_carry()

  def next_updates(self, loop, timeout_s: float) -> list:
    del timeout_s  # It never waits.
    start = time.time()
    count = updates_per_call(
        loop.experiment.config.total_frames - loop.num_frames,
        self.iterations, self.trainer.frames_per_iteration)
    logs, returns, self._carry = self.trainer.train(self._carry, count)
    self.compute_s = time.time() - start
    self._calls += 1
    if self._calls == 1:
      loop.log(f"Anakin: the act-and-learn program was traced, compiled and "
               f"ran its first {count} updates in {self.compute_s:.1f} s.")
    return updates_of(logs, returns)

  def fill(self):
    return None  # No queue.

  def close(self):
    pass


def updates_per_call(frames_left: int, iterations: int,
                     frames_per_iteration: int) -> int:
  """`iterations`, or 1 when fewer frames than that many iterations' are
  left: a run stops at its budget within one update, as a learner fed by
  actors does (two counts: one replica's loop takes both with one trace;
  several replicas' unrolled program traces each once)."""
  return iterations if frames_left >= iterations * frames_per_iteration else 1


def environment_for(experiment) -> tfenvs.TFEnvironment:
  """The TensorFlow version of `experiment`'s one level, checked against
  the agent's actions and observations.

  Raises:
    ValueError: they differ (an observation option changed the agent's).
  """
  (level,) = experiment.levels
  env = tf_levels.make(experiment.suite, level)
  normal = lambda spec: {name: (tuple(shape), np.dtype(dtype))
                         for name, (shape, dtype) in spec.items()}
  spec = normal(experiment.observation_spec)
  if (env.num_actions != experiment.num_actions or
      spec != normal(env.observation_spec)):
    raise ValueError(
        f"The TensorFlow version of {level} has {env.num_actions} actions "
        f"and observations {dict(env.observation_spec)}, the run's agent "
        f"{experiment.num_actions} and {spec}: drop the observation "
        "options (--obs_*) that change them.")
  return env


def updates_of(logs, returns) -> list:
  """The `base.Update`s, one per iteration, of what `Anakin.train`
  returned (its logs and episode returns), as the loop's parts read them
  (no policy lag, nothing replayed, one level)."""
  logs = {name: np.asarray(value) for name, value in logs.items()}
  returns = np.asarray(returns)
  count, size = returns.shape[:2]
  level_id = np.zeros(size, np.int32)
  no_lag, fresh = np.zeros(size, np.int64), np.zeros(size, bool)
  return [base.Update({"episode_return": returns[i], "level_id": level_id},
                      {name: value[i] for name, value in logs.items()},
                      no_lag, fresh) for i in range(count)]


def devices(replicas: int) -> list[str]:
  """The devices of `replicas` replicas: the first `replicas` GPUs (0:
  all), else the CPU, split into `replicas` logical devices when more than
  one (before TensorFlow initialises them)."""
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    if replicas > len(gpus):
      raise ValueError(f"--anakin_replicas={replicas}, but this machine "
                       f"has {len(gpus)} GPU(s).")
    return [f"/gpu:{i}" for i in range(replicas or len(gpus))]
  if replicas > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or []) != replicas:
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    return [f"/cpu:{i}" for i in range(replicas)]
  return ["/cpu:0"]


def run(experiment, device_names: Sequence[str] = ("/cpu:0",), *,
        iterations: int = 32, xla: bool = True,
        logdir: Optional[str] = None, seed: int = 0,
        log_interval_s: float = 5.0, checkpoint_interval_s: float = 600.0,
        stop: Optional[threading.Event] = None,
        log: Callable[[str], None] = print,
        max_nonfinite_updates: int = 5):
  """Trains `experiment` (one level with a TensorFlow version,
  `config.tf_levels`) in anakin mode, one replica on each of
  `device_names` (`devices`), until its frame budget is spent or `stop` is
  set; the run directory as `learner_loop.run_learner` keeps it. Returns
  the loop's `learner_loop.TrainingResult`.

  Args:
    iterations: updates per call of the compiled program.
    xla: compile each replica's unroll (`Anakin`) and the loss gradient
      (`Learner`'s `xla_gradients`) with XLA.
  """
  from impala_tf import learner_loop  # pylint: disable=g-import-not-at-top
  env = environment_for(experiment)
  names = list(device_names)
  config = experiment.config
  if config.batch_size % len(names):
    raise ValueError(f"--batch_size={config.batch_size} cannot be split "
                     f"evenly over {len(names)} replicas.")
  learner = learner_lib.Learner(config, experiment.make_network,
                                experiment.observation_spec,
                                strategy=learner_lib.make_strategy(names),
                                xla_gradients=xla, seed=seed)
  trainer = Anakin(env, learner, config.batch_size // len(names), seed=seed,
                   xla=xla)
  log(f"Anakin: {experiment.levels[0]} written in TensorFlow, "
      f"{config.batch_size} environments over {len(names)} replica(s) "
      f"({', '.join(names)}), "
      f"{iterations} updates per call of the compiled program, unroll "
      f"and loss gradient {'compiled with XLA' if xla else 'as graph ops'}.")
  return learner_loop.run_loop(
      experiment, learner, AnakinSource(trainer, iterations), logdir=logdir,
      log_interval_s=log_interval_s,
      checkpoint_interval_s=checkpoint_interval_s, stop=stop, log=log,
      max_nonfinite_updates=max_nonfinite_updates)
