"""Several agents vectorised into one set of wider kernels: what `jax.vmap`
does for the Podracer report's many seeds, for anakin runs that differ only
in their seed (`python -m impala_tf.anakin.together --vectorise`).

The agents' weights and RMSProp slots are stacked `[agents, ...]` and their
environments alternate along one batch (environment b is agent
`b % agents`'s). The network reads the stacked weights (`networks.reading`)
and runs every agent's layer on its own rows in one kernel: a grouped
convolution (one group per agent) or a batched matrix product
(`networks._apply_stacked`). The update is the learner's own
(`Learner._pass_gradients` with `agents`): V-trace and the losses over the
whole batch, each agent's losses summed over its own trajectories, so the
gradient of their sum is each agent's own gradient in its slice. What the
learner does over all its variables is done per agent here: the global-norm
clip, the finite check (an agent whose update is not finite keeps its
weights and slots; the others go on) and the logs.

Each agent keeps its own `Learner` (what its run directory checkpoints,
restores and exports): before each call of the compiled program their
weights and slots are stacked into it, and after it copied back, with
their counters. The agents draw their environments and actions from one
stream (the first run's seed, a stream per environment); their first
weights follow their own seeds.

Networks without an instruction encoder (DMLab's, whose levels have no
TensorFlow version), RMSProp (Adam's step count is one per agent) and one
replica; runs whose settings differ in anything but the seed train side by
side instead (`together.train_together` without `vectorise`). On 2 CPU
cores the wider kernels are slower than the agents side by side
(docs/benchmarks.md); on an accelerator, where a kernel's launch costs
more than its arithmetic, they are the way to many seeds.
"""

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from impala_tf import anakin
from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks


def check_vectorisable(experiments: Sequence) -> None:
  """Refuses, in one line, runs that one vectorised program cannot train:
  settings other than the seed differ, or the network or optimiser is one
  the stacked weights do not take."""
  first = experiments[0]
  config = first.config
  differ = sorted({field.name for exp in experiments[1:]
                   for field in dataclasses.fields(config)
                   if getattr(exp.config, field.name) !=
                   getattr(config, field.name)} |
                  ({"levels"} if any(exp.levels != first.levels
                                     for exp in experiments) else set()))
  if differ:
    raise ValueError(
        "Vectorised agents differ only in their seed; these runs also "
        f"differ in {', '.join(differ)} (train them side by side: without "
        "--vectorise).")
  refused = [reason for reason, present in (
      ("an instruction encoder", config.use_instruction),
      (f"the {config.optimizer} optimiser (RMSProp only)",
       config.optimizer != "rmsprop"),
      ("--normalize_advantages (over the whole batch)",
       config.normalize_advantages)) if present]
  if refused:
    raise ValueError("Vectorised agents take networks without an "
                     "instruction encoder, trained with RMSProp; these runs "
                     f"have {'; '.join(refused)}.")


class Vectorised:
  """`learners` (one per agent, same settings) trained as one on `env`.

  Args:
    env: the environment, written in TensorFlow.
    learners: the agents' learners, one replica each.
    make_learner: builds a learner like theirs: the template whose network
      reads the stacked weights and whose counters and hyperparameters the
      program uses (its own weights are not trained).
    envs_per_agent: each agent's environments (its batch).
    seed: the environments' and actions' stream.
    xla: compile the unroll and the loss gradient with XLA (`anakin.Anakin`).
  """

  def __init__(self, env, learners: Sequence[learner_lib.Learner],
               make_learner, envs_per_agent: int, seed: int = 0,
               xla: bool = False):
    self.learners = list(learners)
    self.agents = len(self.learners)
    self.template = make_learner()
    if self.template.strategy.num_replicas_in_sync != 1:
      raise ValueError("Vectorised agents run on one replica.")
    self.config = self.template.config
    self.envs_per_agent = int(envs_per_agent)
    self.trainer = anakin.Anakin(env, self.template,
                                 self.agents * self.envs_per_agent,
                                 seed=seed, xla=xla)
    stack = lambda values: tf.Variable(tf.stack(values), trainable=False)
    self.variables = [stack(same) for same in
                      zip(*(_values(l.variables) for l in self.learners))]
    self.optimizer = learner_lib.make_optimizer(self.config)
    self.optimizer.initialize(self.variables)
    if ([(self.agents, *v.shape) for v in self.learners[0].optimizer.variables]
        != [tuple(v.shape) for v in self.optimizer.variables]):
      raise ValueError("The agents' optimiser slots do not stack.")
    self._program = tf.function(
        lambda carry, count: anakin.loop(self._iteration, carry, count))

  @property
  def frames_per_iteration(self) -> int:
    """Frames one iteration adds to each agent."""
    return (self.envs_per_agent * self.config.unroll_length *
            self.config.frames_per_step)

  def initial_carry(self):
    """Every agent's environments reset; the template's counters set to
    the agents' (which must agree: a resumed run goes on with the others
    only from the same frame count)."""
    frames = {int(l.num_frames.numpy()) for l in self.learners}
    if len(frames) > 1:
      raise ValueError(f"Vectorised agents go on from one frame count; "
                       f"these are at {sorted(frames)}.")
    self.template.num_frames.assign(frames.pop())
    self.template.num_updates.assign(0)
    return self.trainer.initial_carry()

  def train(self, carry, iterations: int):
    """`iterations` unrolls and updates of every agent; their weights,
    slots and counters copied back to their learners.

    Returns:
      (per agent: (logs, episode returns) as `Anakin.train` gives one
      run's), the carry for the next call.
    """
    self._load()
    (logs, returns), carry = self._program(
        carry, tf.constant(int(iterations), tf.int32))
    self._store()
    logs = {name: np.asarray(value) for name, value in logs.items()}
    returns = np.asarray(returns)
    frames = int(iterations) * self.frames_per_iteration
    per_agent = []
    for agent, learner in enumerate(self.learners):
      own = {name: value[:, agent] if value.ndim == 2 else value
             for name, value in logs.items()}
      learner.num_frames.assign_add(frames)
      learner.num_updates.assign_add(int(own.pop("applied").sum()))
      per_agent.append((own, returns[:, agent::self.agents]))
    return per_agent, carry

  def _state(self) -> list:
    """The stacked weights and optimiser slots, in the order of
    `_own_state`."""
    return self.variables + list(self.optimizer.variables)

  def _load(self):
    """Every agent's weights and slots stacked into `_state`."""
    own = [_own_state(learner) for learner in self.learners]
    for stacked, same in zip(self._state(), zip(*own)):
      stacked.assign(tf.stack(_values(same)))

  def _store(self):
    """`_state`'s slices back to their agents."""
    for agent, learner in enumerate(self.learners):
      for own, stacked in zip(_own_state(learner), self._state()):
        own.assign(stacked[agent])

  # --------------------------------------------------------- in the graph

  def _iteration(self, carry):
    template = self.template
    learning_rate = template.learning_rate(template.num_frames)
    with networks.reading(template.network, self.variables):
      batch, carry = self.trainer._compiled_unroll(carry)  # pylint: disable=protected-access
    logs = self._step(batch, learning_rate)
    for name, value in template.hyperparameter_logs(learning_rate).items():
      logs[name] = tf.fill([self.agents], value)
    template.num_frames.assign_add(self.frames_per_iteration)
    return (logs, batch["episode_return"]), carry

  def _step(self, batch, learning_rate):
    """`Learner._replica_step` for stacked agents: each agent's clip,
    finite check and logs its own (`[agents]`)."""
    template, config = self.template, self.config
    hyperparameters = template.hyperparameters
    entropy_cost = hyperparameters["entropy_cost"].read_value()
    anchor, first_logs, first_applied = None, None, None
    applied = all_finite = tf.ones([self.agents], tf.bool)
    for step in range(config.passes_per_batch):
      with networks.reading(template.network, self.variables):
        gradients, logs, policy_logits = template._pass_gradients(  # pylint: disable=protected-access
            batch, self.variables, entropy_cost, anchor, agents=self.agents)
      if step == 0 and config.ppo_clip is not None:
        anchor = tf.stop_gradient(policy_logits)
      grad_norm = tf.sqrt(tf.add_n([
          tf.reduce_sum(tf.square(tf.reshape(g, [self.agents, -1])), axis=1)
          for g in gradients]))
      if config.max_grad_norm is not None:
        clip = hyperparameters["max_grad_norm"]
        # tf.clip_by_global_norm's scale, one per agent.
        scale = clip * tf.minimum(1.0 / grad_norm, 1.0 / clip)
        gradients = [g * _per_agent(scale, g) for g in gradients]
      logs["grad_norm"] = grad_norm
      finite = tf.logical_and(tf.math.is_finite(grad_norm),
                              tf.math.is_finite(logs["total_loss"]))
      applied = tf.logical_and(applied, finite)
      self._apply(gradients, learning_rate, applied)
      all_finite = tf.logical_and(all_finite, finite)
      if step == 0:
        first_logs, first_applied = logs, applied
    return dict(first_logs, finite=all_finite, applied=first_applied)

  def _apply(self, gradients, learning_rate, applied):
    """RMSProp on every agent; an agent not `applied` keeps its weights
    and slots (copied before the step only when there is one)."""
    epsilon = self.template.hyperparameters["rmsprop_epsilon"]

    def every_agent():
      self.optimizer.apply(gradients, self.variables, learning_rate,
                           epsilon=epsilon)
      return tf.constant(True)

    def some_agents():
      state = self._state()
      before = [tf.identity(v) for v in state]
      with tf.control_dependencies(before):
        every_agent()
      for variable, old in zip(state, before):
        variable.assign(tf.where(_per_agent(applied, old), variable, old))
      return tf.constant(True)

    tf.cond(tf.reduce_all(applied), every_agent, some_agents)


def _own_state(learner) -> list:
  """A learner's weights and optimiser slots."""
  return list(learner.variables) + list(learner.optimizer.variables)


def _values(variables) -> list:
  """Each variable's value (a replica-local one's first copy)."""
  return [tf.convert_to_tensor(v) for v in variables]


def _per_agent(values, like):
  """`values` `[agents]` shaped to broadcast over `like` `[agents, ...]`."""
  return tf.reshape(values, [-1] + [1] * (like.shape.rank - 1))
