"""The learner's update step, independent of any process plumbing.

`Learner.update(batch)` takes `B` trajectories (the layout of
`trajectory.specs`, batch-major `[B, T+1, ...]`) and runs one compiled step:

1. split the batch evenly over the strategy's replicas;
2. on each replica, unroll the network from the stored core state over all
   `T + 1` steps (time-major), bootstrap from the baseline at step `T`, and
   pair the output at `t` with the action `prev_action[t+1]`, the reward
   `reward[t+1]` and the discount `γ · (1 − done[t+1])`;
3. the off-policy correction's targets (`config.correction`: V-trace by
   default, corrections.py), the three losses (losses.py), gradients all-reduced
   across replicas, global-norm clipping, TF1-style RMSProp with the learning
   rate annealed linearly to 0 over `config.anneal_horizon` (Table G.1:
   the run's total_frames, unless `anneal_frames` says otherwise), or
   held constant when `anneal_learning_rate` is off (a population member's
   default, impala_tf/pbt/rules.py);
   the learning rate, entropy cost, RMSProp ε and clipping norm are read from
   `Learner.hyperparameters` (variables) at every update, so population-based
   training (impala_tf/pbt) changes them without rebuilding the step;
4. unless the loss or the gradient norm is not finite: then nothing is
   applied, the update count stays, and the logs say `finite=False` (the
   learner loop's divergence guard counts these);
5. with `config.passes_per_batch` > 1 (ours, not the paper's), steps 2 to 4
   again on the same batch, each pass from the weights the one before it
   left (a pass after a non-finite one is skipped); with `config.ppo_clip`
   every pass's policy gradient is PPO's clipped surrogate against the
   policy of the first pass, V-trace's ρ taken against that policy too
   (APPO's combination). One update counts per batch, the logs are the
   first pass's.

Multi-device: the strategy is a `snt.distribute.Replicator` (a
`tf.distribute.MirroredStrategy` whose variables are replica-local, so each
replica applies the same all-reduced update to its own copy). Sonnet refuses
plain MirroredStrategy for its optimisers; ours follows the same model.
"""

import functools
from typing import Callable, Mapping, Optional, Sequence

import sonnet as snt
import tensorflow as tf

from impala_tf.agent import corrections
from impala_tf.agent import losses
from impala_tf.agent import networks
from impala_tf.agent import optimizers
from impala_tf.config import presets
from impala_tf.agent import trajectory


def make_strategy(devices: Optional[Sequence[str]] = None
                  ) -> tf.distribute.Strategy:
  """A Replicator over `devices` (default: every local GPU, else the CPU).

  One strategy per device set per process: two strategies over the same
  devices number their collective ops from the same starting key, and the
  second one's all-reduces then abort with a shape mismatch on TF 2.21.
  """
  if devices is None:
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or ["/cpu:0"]
  return _strategy_for(tuple(devices))


@functools.lru_cache(maxsize=None)
def _strategy_for(devices: tuple[str, ...]) -> tf.distribute.Strategy:
  return snt.distribute.Replicator(devices=list(devices))


def make_optimizer(config: presets.Config):
  """The optimiser `config.optimizer` names, with its settings."""
  if config.optimizer == "adam":
    return optimizers.Adam(beta1=config.adam_beta1, beta2=config.adam_beta2,
                           epsilon=config.adam_epsilon)
  return optimizers.RMSProp(
      decay=config.rmsprop_decay, epsilon=config.rmsprop_epsilon,
      momentum=config.rmsprop_momentum,
      initial_mean_square=config.rmsprop_initial_mean_square)


# The hyperparameters population-based training tunes (App. F): each is a
# variable the compiled step reads, initialised from the config field of the
# same name. `max_grad_norm` exists only when the config clips at all.
TUNABLE = ("learning_rate", "entropy_cost", "rmsprop_epsilon",
           "max_grad_norm")


class Hyperparameters(tf.Module):
  """The tunable hyperparameters (`TUNABLE`) as float32 variables.

  `learning_rate` is the schedule's initial value: the rate in force is
  it times (1 − frames / anneal_horizon), or it alone when the learner does
  not anneal (`Learner.anneal_learning_rate`).
  """

  def __init__(self, config: presets.Config):
    super().__init__(name="hyperparameters")
    self.variables_by_name = {
        name: tf.Variable(float(getattr(config, name)), dtype=tf.float32,
                          trainable=False, name=name)
        for name in TUNABLE if getattr(config, name) is not None}

  def __getitem__(self, name: str) -> tf.Variable:
    return self.variables_by_name[name]

  def values(self) -> dict[str, float]:
    """name → current value."""
    return {name: float(v.numpy())
            for name, v in self.variables_by_name.items()}

  def assign(self, values) -> None:
    """Sets the variables named in `values` (a name → number mapping);
    an unknown name is a ValueError naming the ones there are."""
    unknown = sorted(set(values) - set(self.variables_by_name))
    if unknown:
      raise ValueError(f"Unknown hyperparameters {unknown}; this learner "
                       f"has {sorted(self.variables_by_name)}.")
    for name, value in values.items():
      if not value > 0:
        raise ValueError(f"Hyperparameter {name}={value} must be positive.")
      self.variables_by_name[name].assign(value)

  def reset(self, config: presets.Config) -> None:
    """Back to the config's values."""
    self.assign({name: getattr(config, name)
                 for name in self.variables_by_name})


class Learner:
  """Owns the network, the optimiser and the frame counter.

  Args:
    config: the run's `presets.Config`.
    network_fn: builds the network (called once, under the strategy scope).
    observation_spec: name → (shape, dtype) of one observation.
    strategy: a `snt.distribute.Replicator`; default `make_strategy()`.
    anneal_learning_rate: the initial value of the variable
      `anneal_learning_rate` (see `learning_rate`).
    xla_gradients: compile the loss and its gradient (one part of the
      batch: the network unrolled, V-trace, the losses, backpropagation)
      with XLA; the all-reduce and the optimiser stay TensorFlow's. Anakin
      mode turns it on with its XLA unroll (docs/benchmarks.md).
    seed: draws the network's first weights from it (TF's global seed,
      set just before the network is built: the run's `--seed`); None
      leaves them to TF's own unseeded draw.
  """

  def __init__(self, config: presets.Config,
               network_fn: Callable[[], networks.ImpalaNetwork],
               observation_spec: Mapping[str, tuple],
               strategy: Optional[tf.distribute.Strategy] = None,
               anneal_learning_rate: bool = True,
               xla_gradients: bool = False,
               seed: Optional[int] = None):
    self.config = config
    self.strategy = strategy or make_strategy()
    self.observation_spec = dict(observation_spec)
    if seed is not None:
      tf.random.set_seed(seed)
    with self.strategy.scope():
      self.network = network_fn()
      # Create the variables now, eagerly: the compiled step must not.
      dummy = networks.dummy_input(self.observation_spec, batch_size=1)
      self.network(dummy, self.network.initial_state(1))
      self.optimizer = make_optimizer(config)
      self.optimizer.initialize(self.network.trainable_variables)
    # Counters live outside the strategy: one copy, updated cross-replica.
    self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False,
                                   name="num_updates")
    self.num_frames = tf.Variable(0, dtype=tf.int64, trainable=False,
                                  name="num_frames")
    self.hyperparameters = Hyperparameters(config)
    # A variable, not a Python flag: the compiled step reads it at every
    # update, so a population member (impala_tf/pbt/member.py) can turn the
    # schedule off after the step was traced. Not checkpointed: it is the
    # run's setting, not its state.
    self.anneal_learning_rate = tf.Variable(
        bool(anneal_learning_rate), dtype=tf.bool, trainable=False,
        name="anneal_learning_rate")
    self._gradients = (tf.function(self._part_gradients, jit_compile=True)
                       if xla_gradients else self._part_gradients)
    self._update = tf.function(self._update_fn)

  @property
  def variables(self) -> Sequence[tf.Variable]:
    """The network's trainable variables, in the order actors mirror."""
    return self.network.trainable_variables

  def learning_rate(self, num_frames) -> tf.Tensor:
    """The rate in force at `num_frames`: linear annealing from the
    initial learning rate (the variable `hyperparameters["learning_rate"]`)
    to 0 at total_frames [paper Table G.1] (at `config.anneal_frames` where
    that is set [ours]), or that rate unchanged while
    `anneal_learning_rate` is False [paper Fig. F.1, our reading for PBT]."""
    progress = tf.cast(num_frames, tf.float32) / float(
        self.config.anneal_horizon)
    factor = tf.where(self.anneal_learning_rate,
                      tf.maximum(0.0, 1.0 - progress), 1.0)
    return self.hyperparameters["learning_rate"] * factor

  def update(self, batch: Mapping[str, tf.Tensor],
             num_fresh: Optional[int] = None) -> dict[str, tf.Tensor]:
    """One update on `batch` (`[B, T+1, ...]`); returns scalar logs.

    `num_fresh`: how many of the trajectories the actors just made (the
    rest come from replay); only their frames count. Default: all.
    """
    batch_size = int(batch["reward"].shape[0])
    replicas = self.strategy.num_replicas_in_sync
    if batch_size % replicas:
      raise ValueError(f"The batch of {batch_size} trajectories cannot be "
                       f"split evenly over {replicas} replicas.")
    num_fresh = batch_size if num_fresh is None else num_fresh
    return self._update(dict(batch), tf.constant(num_fresh, tf.int64))

  def _update_fn(self, batch, num_fresh):
    replicas = self.strategy.num_replicas_in_sync
    per_replica = batch["reward"].shape[0] // replicas

    def split(ctx):
      start = ctx.replica_id_in_sync_group * per_replica
      return tf.nest.map_structure(
          lambda x: x[start:start + per_replica], batch)

    distributed = self.strategy.experimental_distribute_values_from_function(
        split)
    learning_rate = self.learning_rate(self.num_frames)
    logs = self.strategy.run(self._replica_step,
                             args=(distributed, learning_rate))
    # Every replica returns the same all-reduced logs.
    logs = self.strategy.experimental_local_results(logs)[0]
    steps = tf.shape(batch["reward"], out_type=tf.int64)
    # The frames were consumed either way; only an applied update counts.
    self.num_frames.assign_add(
        num_fresh * (steps[1] - 1) * self.config.frames_per_step)
    self.num_updates.assign_add(tf.cast(logs.pop("applied"), tf.int64))
    logs.update(self.hyperparameter_logs(learning_rate))
    return logs

  def hyperparameter_logs(self, learning_rate) -> dict[str, tf.Tensor]:
    """The hyperparameters an update used, for its logs: the learning rate
    in force and the other tunable ones' values (in the graph)."""
    logs = {"learning_rate": learning_rate}
    for name, variable in self.hyperparameters.variables_by_name.items():
      if name != "learning_rate":
        logs[name] = variable.read_value()
    return logs

  def _replica_step(self, batch, learning_rate):
    config = self.config
    reduction = config.loss_reduction
    variables = self.network.trainable_variables
    # Read here, not in the gradient: an XLA cluster on another replica's
    # device cannot read a variable that lives on the first one's.
    entropy_cost = self.hyperparameters["entropy_cost"].read_value()
    ctx = tf.distribute.get_replica_context()
    # Summed losses: the gradient of the whole batch is the sum of the
    # replicas'; averaged losses over equal shares: the mean.
    reduce_op = (tf.distribute.ReduceOp.SUM if reduction == "sum"
                 else tf.distribute.ReduceOp.MEAN)
    anchor_logits, first_logs, first_applied = None, None, None
    applied = all_finite = tf.constant(True)
    # `passes_per_batch` steps on the same batch, one after another: each
    # pass's forward pass reads the variables the pass before it wrote.
    for step in range(config.passes_per_batch):
      gradients, logs, policy_logits = self._pass_gradients(
          batch, variables, entropy_cost, anchor_logits)
      if step == 0 and config.ppo_clip is not None:
        # The policy before this batch's first step: every pass's ratio
        # and V-trace's ρ are taken against it.
        anchor_logits = tf.stop_gradient(policy_logits)
      gradients = ctx.all_reduce(reduce_op, gradients)
      if config.max_grad_norm is not None:
        gradients, grad_norm = tf.clip_by_global_norm(
            gradients, self.hyperparameters["max_grad_norm"])
      else:
        grad_norm = tf.linalg.global_norm(gradients)
      means = {k: logs.pop(k) for k in ("mean_vs", "mean_rho")}
      logs = ctx.all_reduce(reduce_op, logs)
      logs.update(ctx.all_reduce(tf.distribute.ReduceOp.MEAN, means))
      logs["grad_norm"] = grad_norm
      # The divergence guard: a non-finite loss or gradient is never
      # applied, nor is any pass after it. The norm is of the all-reduced
      # gradients and the losses are reduced, so every replica takes the
      # same branch.
      finite = tf.logical_and(tf.math.is_finite(grad_norm),
                              tf.math.is_finite(logs["total_loss"]))
      applied = tf.cond(
          tf.logical_and(finite, applied),
          functools.partial(self._apply, gradients, variables,
                            learning_rate),
          lambda: tf.constant(False))
      all_finite = tf.logical_and(all_finite, finite)
      if step == 0:
        first_logs, first_applied = logs, applied
    # The logs are the first pass's (the batch under the policy that met
    # it, as with one pass); `finite` says whether every pass was (the
    # divergence guard counts it), `applied` whether the weights changed
    # (the update count).
    return dict(first_logs, finite=all_finite, applied=first_applied)

  def _apply(self, gradients, variables, learning_rate):
    # Population-based training tunes RMSProp's ε; Adam keeps its own.
    epsilon = (self.hyperparameters["rmsprop_epsilon"]
               if self.config.optimizer == "rmsprop" else None)
    self.optimizer.apply(gradients, variables, learning_rate,
                         epsilon=epsilon)
    return tf.constant(True)

  def _pass_gradients(self, batch, variables, entropy_cost, anchor_logits,
                      agents: Optional[int] = None):
    """One pass's gradient of the replica's `batch`, in parts of at most
    `learner_microbatch_size` trajectories; its logs; and its policy logits
    (time-major `[T, B, A]`). `anchor_logits` (of the same layout, or
    None): the policy of the batch's first pass, for --ppo_clip.
    `agents`: the batch holds that many agents' trajectories, alternating
    (`_part_gradients`); each part keeps every agent's share of it."""
    reduction = self.config.loss_reduction
    size = batch["reward"].shape[0]
    group = agents or 1
    parts = microbatch_parts(size // group,
                             self.config.learner_microbatch_size)
    gradients, logs, logits = None, None, []
    for i in range(parts):
      begin, end = i * size // parts, (i + 1) * size // parts
      part = tf.nest.map_structure(lambda x, b=begin, e=end: x[b:e], batch)
      if gradients is not None:
        # One part after another: the next forward pass starts once the
        # gradient before it is computed, so only one part's activations
        # are alive at a time.
        with tf.control_dependencies(gradients):
          part = tf.nest.map_structure(tf.identity, part)
      part_anchor = (None if anchor_logits is None
                     else anchor_logits[:, begin:end])
      part_gradients, part_logs, part_logits = self._gradients(
          part, variables, entropy_cost, part_anchor, agents)
      logits.append(part_logits)
      if gradients is None:
        gradients, logs = part_gradients, part_logs
      else:
        gradients = [_add(a, b) for a, b in zip(gradients, part_gradients)]
        logs = {k: logs[k] + part_logs[k] for k in logs}
    if parts > 1:
      # Equal parts: a batch mean is the mean of the parts' means; a sum
      # is their sum.
      means = ("mean_vs", "mean_rho") + (
          tuple(logs) if reduction == "mean" else ())
      logs = {k: v / parts if k in means else v for k, v in logs.items()}
      if reduction == "mean":
        gradients = [_scale(g, 1.0 / parts) for g in gradients]
    return gradients, logs, tf.concat(logits, axis=1)

  def _part_gradients(self, batch, variables, entropy_cost,
                      anchor_logits=None, agents: Optional[int] = None):
    """The loss gradient of `batch` (`[B, T+1, ...]`), its logs and its
    policy logits `[T, B, A]`. With --ppo_clip the policy gradient is the
    clipped surrogate against `anchor_logits` (`[T, B, A]`; None: these
    logits themselves, the batch's first pass).

    `agents`: the batch is that many agents' trajectories, alternating
    (agent `b % agents` owns trajectory b), and `variables` their weights
    stacked `[agents, ...]`, which the network reads
    (`impala_tf.anakin.vectorised`). Each agent's losses and logs are then
    its own, `[agents]`; the gradient, that of their sum, is every agent's
    own gradient in its slice."""
    config = self.config
    tm = trajectory.to_time_major(batch)
    inputs = networks.AgentInput(
        prev_action=tm["prev_action"], reward=tm["reward"], done=tm["done"],
        observation={name: tm[name]
                     for name in trajectory.observation_names(tm)})
    if self.network.use_lstm:
      state = snt.LSTMState(hidden=batch["core_state_h"],
                            cell=batch["core_state_c"])
    else:
      state = ()
    with tf.GradientTape() as tape:
      # `variables` may be tensors the network reads in place of its own
      # (`networks.reading`).
      tape.watch(variables)
      outputs, _ = self.network.unroll(inputs, state)
      target_logits = outputs.policy_logits[:-1]
      values = outputs.baseline[:-1]
      actions = tm["prev_action"][1:]
      # APPO's reading of PPO with V-trace: ρ against the policy of the
      # batch's first pass, the ratio π/π_first clipped in the surrogate.
      ppo = config.ppo_clip is not None
      if ppo:
        anchor_logits = tf.stop_gradient(
            target_logits if anchor_logits is None else anchor_logits)
      rewards = losses.clip_rewards(tm["reward"][1:], config.reward_clipping)
      # A truncated episode's return goes on past its last observation.
      rewards += tm["bootstrap"][1:]
      discounts = config.discount * (1.0 - tf.cast(tm["done"][1:],
                                                   tf.float32))
      targets = corrections.targets(
          config.correction,
          behaviour_policy_logits=tm["behaviour_logits"][:-1],
          target_policy_logits=anchor_logits if ppo else target_logits,
          actions=actions, discounts=discounts, rewards=rewards, values=values,
          bootstrap_value=outputs.baseline[-1],
          clip_rho_threshold=config.clip_rho_threshold,
          clip_pg_rho_threshold=config.pg_rho_threshold,
          clip_c_threshold=config.clip_c_threshold,
          lambda_=config.vtrace_lambda, pg_bootstrap=config.pg_bootstrap)
      reduction = config.loss_reduction
      pg_advantages = targets.pg_advantages
      if config.normalize_advantages:
        pg_advantages = losses.normalize_advantages(pg_advantages)
      if ppo:
        pg_loss = losses.clipped_surrogate_loss(
            target_logits, anchor_logits, actions, pg_advantages,
            config.ppo_clip, reduction, groups=agents)
      else:
        pg_loss = losses.policy_gradient_loss(
            target_logits, actions, pg_advantages, reduction,
            epsilon=targets.log_prob_epsilon, groups=agents)
      baseline_loss = losses.baseline_loss(targets.vs - values, reduction,
                                           groups=agents)
      entropy_loss = losses.entropy_loss(target_logits, reduction,
                                         groups=agents)
      total_loss = (pg_loss + config.baseline_cost * baseline_loss +
                    entropy_cost * entropy_loss)
    logs = {"total_loss": total_loss, "pg_loss": pg_loss,
            "baseline_loss": baseline_loss, "entropy_loss": entropy_loss,
            "mean_vs": _mean(targets.vs, agents),
            "mean_rho": _mean(tf.exp(targets.log_rhos), agents)}
    return tape.gradient(total_loss, variables), logs, target_logits


def _mean(x, agents: Optional[int] = None):
  """The mean of `x` `[T, B]`, or each agent's `[agents]`
  (`_part_gradients`)."""
  if agents is None:
    return tf.reduce_mean(x)
  return tf.reduce_mean(tf.reshape(x, [-1, agents]), axis=0)


def microbatch_parts(trajectories: int, max_size: int) -> int:
  """The fewest equal parts of `trajectories` with at most `max_size`
  trajectories each (1 when `max_size` is 0 or the whole fits)."""
  if max_size <= 0 or trajectories <= max_size:
    return 1
  return next(parts for parts in range(-(-trajectories // max_size),
                                       trajectories + 1)
              if trajectories % parts == 0)


def _add(a, b):
  """a + b for gradients, sparse ones (an embedding's) kept sparse."""
  if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
    return tf.IndexedSlices(tf.concat([a.values, b.values], 0),
                            tf.concat([a.indices, b.indices], 0),
                            a.dense_shape)
  return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)


def _scale(g, factor):
  if isinstance(g, tf.IndexedSlices):
    return tf.IndexedSlices(g.values * factor, g.indices, g.dense_shape)
  return g * factor
