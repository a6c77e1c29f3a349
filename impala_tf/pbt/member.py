"""The learner-loop part that makes a run a population member (`--pbt_dir`).

At start: a new member draws its hyperparameters (`rules`, Table D.1, or
the config's with `initial="config"`) from a generator seeded by the run's
seed and the member index; a resumed member keeps the ones its checkpoint
holds. Its learning rate is not annealed unless `rules.anneal` asks for it
[paper Fig. F.1, our reading; see rules.py]: the rate in force is the
tuned value itself, changed only by exploit and explore. After every update it collects the finished episode returns; once it
is ready (`rules.is_ready`) it:

1. computes its fitness over the episodes since it was last ready;
2. writes a checkpoint others can copy (network and optimiser slots) and
   its state (`store.py`);
3. exploit: draws one other member that has a fitness and, if that one is
   better by more than the threshold, restores that member's copy
   checkpoint into its own network and optimiser and takes its
   hyperparameters (its own frame and update counters stay, so with
   `rules.anneal` the learning-rate schedule continues from its own
   frames);
4. explore: perturbs the hyperparameters (copied or not) and assigns them
   to the learner's variables, which the next update reads;
5. records the event (who copied whom, at which frames, fitness, the
   hyperparameters before and after) and publishes the new weights at once.
"""

import math
import os
import socket
import time
from typing import Optional

import numpy as np
import tensorflow as tf

from impala_tf.learner_loop import base
from impala_tf.learner_loop import checkpointing
from impala_tf.learner_loop import episodes
from impala_tf.learner_loop import publishing
from impala_tf.pbt import rules as rules_lib
from impala_tf.pbt import store

# Copy checkpoints kept per member: the newest and the one before, so a
# member reading the state written just before a newer one still finds it.
_COPIES_KEPT = 2


def _format(values: dict) -> str:
  return ", ".join(f"{k} {v:.3g}" for k, v in sorted(values.items()))


class PopulationMember(base.LoopPart):
  """See the module docstring.

  Args:
    pbt_dir: the population's directory.
    member: this member's index.
    logdir: this member's run directory (copy checkpoints go under it).
    rules: the population's `rules_lib.Rules`.
    seed: the run's seed (with `member`, seeds this member's draws).
    initial: how a new member starts (`rules_lib.INITIAL_MODES`).
  """

  owns_hyperparameters = True

  def __init__(self, pbt_dir: str, member: int, logdir: str,
               rules: rules_lib.Rules, *, seed: int = 0,
               initial: str = "table_d1"):
    if member < 0:
      raise ValueError(f"member={member} must be >= 0.")
    if initial not in rules_lib.INITIAL_MODES:
      raise ValueError(f"initial={initial!r}; expected one of "
                       f"{rules_lib.INITIAL_MODES}.")
    self.pbt_dir = pbt_dir
    self.member = member
    self.logdir = logdir
    self.rules = rules
    self.seed = seed
    self.initial = initial
    self.events: list[dict] = []  # This process's ready events.
    self._rng = None
    self._returns: dict[int, list[float]] = {}
    self._new_episodes = 0
    self._tuned: tuple[str, ...] = ()
    self._state: dict = {}

  def start(self, loop):
    learner = loop.learner
    config = loop.experiment.config
    self._tuned = rules_lib.tuned_names(config)
    # Read by the compiled step at every update (learner.learning_rate).
    learner.anneal_learning_rate.assign(self.rules.anneal)
    # Seeded by the update count too: a resumed member does not repeat the
    # draws it made before it stopped.
    self._rng = (np.random.default_rng([self.seed, self.member,
                                        loop.num_updates])
                 if loop.num_updates else
                 rules_lib.member_rng(self.seed, self.member))
    checkpointer = loop.part(checkpointing.Checkpointer)
    resumed = checkpointer is not None and checkpointer.restored
    schedule = (f"annealed linearly to 0 at {config.anneal_horizon:,} frames"
                if self.rules.anneal else "not annealed")
    if resumed:
      loop.log(f"PBT member {self.member}: resumed with "
               f"{_format(self.hyperparameters(loop))}; learning rate "
               f"{schedule}.")
    else:
      values = rules_lib.initial_hyperparameters(config, self._rng,
                                                 self.initial)
      learner.hyperparameters.assign(values)
      loop.log(f"PBT member {self.member} of {self.pbt_dir}: starts with "
               f"{_format(values)} ({self.initial}); learning rate "
               f"{schedule}; ready after "
               f"{self.rules.burn_in_frames:,} frames and every "
               f"{self.rules.ready_episodes:,} episodes.")
    previous = store.read_member_state(self.pbt_dir, self.member) or {}
    self._state = {
        "logdir": self.logdir, "host": socket.gethostname(),
        "fitness": previous.get("fitness", math.nan),
        "fitness_frames": previous.get("fitness_frames"),
        "checkpoint": previous.get("checkpoint"),
        "checkpoint_hyperparameters": previous.get(
            "checkpoint_hyperparameters"),
    }
    self._reset_returns(loop)
    if resumed:
      # The returns collected since the last ready step, saved when this
      # member stopped (members taking turns stop often).
      for level, values in (previous.get("pending_returns") or {}).items():
        if int(level) in self._returns:
          self._returns[int(level)].extend(float(v) for v in values)
      self._new_episodes = sum(len(v) for v in self._returns.values())
    self._write_state(loop, "running")

  def hyperparameters(self, loop) -> dict[str, float]:
    values = loop.learner.hyperparameters.values()
    return {name: values[name] for name in self._tuned}

  def _reset_returns(self, loop):
    self._returns = {i: [] for i in range(len(loop.experiment.levels))}
    self._new_episodes = 0

  def _write_state(self, loop, status: str):
    self._state.update(status=status, frames=loop.num_frames,
                       updates=loop.num_updates, time=time.time(),
                       hyperparameters=self.hyperparameters(loop),
                       pending_returns={str(level): values for level, values
                                        in self._returns.items() if values})
    store.write_member_state(self.pbt_dir, self.member, self._state)

  def after_update(self, loop, update):
    for level, value in episodes.fresh_returns(update):
      self._returns[level].append(value)
      self._new_episodes += 1
    if rules_lib.is_ready(loop.num_frames, self._new_episodes, self.rules):
      self.ready(loop)

  def fitness(self, loop) -> float:
    levels = loop.experiment.levels
    return rules_lib.fitness(
        loop.experiment.suite_object,
        {levels[i]: r for i, r in self._returns.items()})

  def ready(self, loop) -> Optional[dict]:
    """One exploit/explore step (module docstring); returns its event, or
    None while a level has no new episode (not ready yet)."""
    fitness = self.fitness(loop)
    if math.isnan(fitness):
      return None
    frames = loop.num_frames
    before = self.hyperparameters(loop)
    # The weights others may copy and the hyperparameters they were
    # trained with, written together.
    self._state.update(fitness=fitness, fitness_frames=frames,
                       checkpoint=self._write_copy(loop),
                       checkpoint_hyperparameters=before)
    self._write_state(loop, "running")
    states = store.read_members(self.pbt_dir)
    candidates = [m for m, s in states.items()
                  if s.get("checkpoint") and s.get("checkpoint_hyperparameters")
                  and s.get("fitness") is not None
                  and math.isfinite(s["fitness"])]
    opponent = rules_lib.pick_opponent(self.member, candidates, self._rng)
    event = {"member": self.member, "frames": frames,
             "updates": loop.num_updates, "time": time.time(),
             "fitness": fitness, "episodes": self._new_episodes,
             "opponent": opponent, "copied": False,
             "hyperparameters_before": before}
    start_values = before
    if opponent is not None:
      other = states[opponent]
      event["opponent_fitness"] = other["fitness"]
      if rules_lib.should_copy(fitness, other["fitness"],
                               self.rules.exploit_threshold):
        copied = self._copy(loop, opponent, other)
        if copied:
          # Names the other member does not tune (another config) keep
          # this member's values.
          start_values = {name: float(other["checkpoint_hyperparameters"].get(
              name, before[name])) for name in self._tuned}
          event.update(copied=True, source=opponent,
                       source_frames=other.get("fitness_frames"),
                       source_checkpoint=other["checkpoint"],
                       source_hyperparameters=start_values)
    after = rules_lib.explore(start_values, self._rng, self.rules)
    loop.learner.hyperparameters.assign(after)
    event["hyperparameters_after"] = after
    store.write_event(self.pbt_dir, event)
    self.events.append(event)
    self._reset_returns(loop)
    self._write_state(loop, "running")
    checkpointer = loop.part(checkpointing.Checkpointer)
    if checkpointer is not None:
      checkpointer.mark_changed()  # A stop now saves the copy or new values.
    if event["copied"]:
      publisher = loop.part(publishing.WeightPublisher)
      if publisher is not None:
        publisher.publish(loop)  # The actors act with the copy at once.
    versus = ("" if opponent is None else
              f" vs member {opponent}'s {event['opponent_fitness']:.3g}")
    action = (f"copied member {opponent} (its {event['source_frames']:,} "
              "frames)" if event["copied"] else "kept its weights")
    loop.log(f"PBT member {self.member} ready at {frames:,} frames: fitness "
             f"{fitness:.3g} over {event['episodes']:,} episodes{versus}; "
             f"{action}; hyperparameters now {_format(after)}.")
    return event

  def _write_copy(self, loop) -> str:
    """A checkpoint of the network and optimiser for others to copy."""
    directory = os.path.join(self.logdir, store.COPY_DIR)
    # Numbered by time, not by update: a member resumed from an older
    # checkpoint must not write a copy that sorts below the ones it keeps.
    path = tf.train.Checkpoint(
        network=loop.learner.network, optimizer=loop.learner.optimizer
    ).write(os.path.join(directory, f"copy-{time.time_ns()}"))
    kept = sorted({p[:-len(".index")] for p in tf.io.gfile.glob(
        os.path.join(directory, "copy-*.index"))},
                  key=lambda p: int(p.rsplit("-", 1)[1]))
    for old in kept[:-_COPIES_KEPT]:
      for file in tf.io.gfile.glob(old + ".*"):
        tf.io.gfile.remove(file)
    return path

  def _copy(self, loop, opponent: int, state: dict) -> bool:
    """Restores member `opponent`'s copy checkpoint into this learner;
    False (with a line, and this learner unchanged) when it cannot be
    read."""
    variables = (list(loop.learner.network.variables) +
                 list(loop.learner.optimizer.variables))
    saved = [v.numpy() for v in variables]
    try:
      tf.train.Checkpoint(
          network=loop.learner.network, optimizer=loop.learner.optimizer
      ).read(state["checkpoint"]).assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
      # Gone (the member wrote two newer ones since), or a member with
      # another network: no copy this time. A read that failed half way
      # may have assigned some variables: put them back.
      for variable, value in zip(variables, saved):
        variable.assign(value)
      first = (str(e).strip().splitlines() or [type(e).__name__])[0]
      loop.log(f"PBT member {self.member}: could not copy member "
               f"{opponent}'s checkpoint {state['checkpoint']} ({first}); "
               "keeping its own weights.")
      return False
    return True

  def end(self, loop):
    if self._rng is not None:
      self._write_state(loop, "ended")
