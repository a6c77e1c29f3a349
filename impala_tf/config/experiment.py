"""What a run trains on: the suite, its levels, the config, and factories.

An `Experiment` is everything the learner and every actor must agree on,
built once from plain arguments (the launcher's flags) and rebuilt the same
way in every process. The learner never creates an environment; actors
create theirs with `make_env(actor_index)`. Everything suite-specific comes
from the suite object (`impala_tf.suites`), looked up by name.
"""

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from impala_tf.acting import envs
from impala_tf.config import presets
from impala_tf import suites


def observations_sent(available: Sequence[str],
                      use_instruction: bool) -> tuple[str, ...]:
  """The observations that travel in trajectories (and that the network
  reads): the frame, and the instruction when the network has an
  instruction encoder, of the `available` ones. Decided here for the
  experiment and for every actor."""
  wanted = ("frame", "instruction") if use_instruction else ("frame",)
  return tuple(name for name in wanted if name in available)


@dataclasses.dataclass(frozen=True)
class Experiment:
  """See the module docstring.

  Attributes:
    suite: the suite's name (`impala_tf.suites.names()`).
    levels: canonical level (game) names; a trajectory's `level_id` indexes
      this tuple.
    config: the hyperparameters.
    num_actions: size of the action set shared by all levels.
    action_names: the meaning of each action index.
    observation_spec: name → (shape, dtype) of one observation the network
      reads.
    envs_per_actor: environments each actor steps in lockstep.
    env_options: suite-specific keyword arguments for the environments.
    frame_stack: the environments' `frame_stack` (see `envs.BatchedEnv`):
      S > 1 when frames are stacks that travel as single frames.
  """

  suite: str
  levels: tuple[str, ...]
  config: presets.Config
  num_actions: int
  action_names: tuple[str, ...]
  observation_spec: Mapping[str, tuple]
  envs_per_actor: int
  env_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  frame_stack: int = 1

  @property
  def suite_object(self) -> suites.Suite:
    return suites.get(self.suite)

  def make_network(self):
    """The agent network (`networks.ImpalaNetwork`) for this experiment."""
    # Imported here: building and checking an Experiment needs no TF.
    from impala_tf.agent import networks  # pylint: disable=g-import-not-at-top
    return networks.ImpalaNetwork(
        self.num_actions, self.config.torso, self.config.use_lstm,
        self.config.use_instruction, precision=self.config.precision,
        mlp_sizes=(self.config.mlp_units,) * self.config.mlp_layers)

  def trajectory_specs(self):
    """Field name → `tf.TensorSpec` of one trajectory as actors send it
    (`trajectory.restore_frames` turns a batch into the learner's input)."""
    from impala_tf.agent import trajectory  # pylint: disable=g-import-not-at-top
    return trajectory.specs(self.config.unroll_length, self.num_actions,
                            self.observation_spec, self.config.use_lstm,
                            frame_stack=self.frame_stack)

  def level_ids(self, actor_index: int) -> np.ndarray:
    """int32 `[envs_per_actor]`: the level of each of the actor's envs (the
    suite's assignment rule)."""
    return self.suite_object.level_ids(actor_index, self.envs_per_actor,
                                       len(self.levels))

  def make_env(self, actor_index: int, seed: int = 0,
               group: tuple[int, int] = (0, 1)) -> envs.BatchedEnv:
    """The batched environment of actor `actor_index`; with `group` (g, G),
    its g-th of G equal groups of environments (`group_slice`; an actor
    with central inference steps one group while another waits for its
    actions). The whole actor's is group (0, 1)."""
    g, _ = group
    env_seed = seed * 100_003 + actor_index * 1_009 + g * 17
    return self.suite_object.make_train_env(
        self.levels, self.level_ids(actor_index)[self.group_slice(group)],
        env_seed, self.env_options)

  def group_slice(self, group: tuple[int, int]) -> slice:
    """The actor's environments in group (g, G) (G divides
    `envs_per_actor`)."""
    g, groups = group
    if groups < 1 or self.envs_per_actor % groups or not 0 <= g < groups:
      raise ValueError(f"group {g} of {groups}: the {self.envs_per_actor} "
                       "environments of an actor split into a divisor of "
                       "that many groups")
    size = self.envs_per_actor // groups
    return slice(g * size, (g + 1) * size)


def build(suite: str, levels: Optional[Sequence[str]] = None,
          config: Optional[presets.Config] = None,
          envs_per_actor: Optional[int] = None,
          env_options: Optional[Mapping[str, Any]] = None) -> Experiment:
  """Resolves names and checks the combination; errors say what is accepted.

  Args:
    suite: a suite name, e.g. "atari57", "dmlab30" or "catch".
    levels: level or game names; default the suite's (Pong for Atari, all 30
      levels for DMLab-30).
    config: hyperparameters; default the suite's preset.
    envs_per_actor: environments each actor steps; default the suite's.
    env_options: suite-specific environment keyword arguments (e.g.
      `full_action_space` for Atari, `level_cache_dir` for DMLab).
  """
  suite_object = suites.get(suite)
  envs_per_actor = (suite_object.envs_per_actor if envs_per_actor is None
                    else envs_per_actor)
  if envs_per_actor < 1:
    raise ValueError(f"envs_per_actor must be at least 1, got "
                     f"{envs_per_actor}.")
  levels_given = levels
  levels = suite_object.resolve_levels(levels)
  config = config or presets.get(suite_object.preset_for(levels_given or ()))
  if config.frames_per_step != suite_object.action_repeat:
    raise ValueError(
        f"frames_per_step={config.frames_per_step} but suite {suite!r} "
        f"repeats each action for {suite_object.action_repeat} frame(s); "
        "frame counts would be wrong. Set frames_per_step="
        f"{suite_object.action_repeat}.")
  env_options = suite_object.check_options(levels, env_options or {})
  spec = suite_object.env_spec(levels, env_options)
  if config.use_instruction and "instruction" not in spec.observation_spec:
    raise ValueError(f"The config reads an instruction (use_instruction=True)"
                     f" but suite {suite!r} has none; set "
                     "use_instruction=False.")
  observation_spec = {
      name: spec.observation_spec[name] for name in
      observations_sent(spec.observation_spec, config.use_instruction)}
  frame_shape = observation_spec["frame"][0]
  if config.torso != "mlp" and len(frame_shape) != 3:
    raise ValueError(f"The {config.torso} torso takes images [H, W, C]; "
                     f"suite {suite!r} observes {list(frame_shape)}: use "
                     "--torso=mlp.")
  return Experiment(suite=suite, levels=levels, config=config,
                    num_actions=spec.num_actions,
                    action_names=tuple(spec.action_names),
                    observation_spec=observation_spec,
                    envs_per_actor=envs_per_actor, env_options=env_options,
                    frame_stack=spec.frame_stack)


def unplayed_levels(exp: Experiment, num_actors: int) -> list[str]:
  """The levels no environment of `num_actors` actors plays (the suite's
  `level_ids` rule)."""
  played = {int(i) for actor in range(num_actors)
            for i in exp.level_ids(actor)}
  return [level for i, level in enumerate(exp.levels) if i not in played]


def with_every_level_played(exp: Experiment, num_actors: int) -> Experiment:
  """`exp` with enough environments per actor that `num_actors` actors
  play every level, where more environments can (not for a suite that
  gives each actor one level); unchanged when they already do."""
  needed = -(-len(exp.levels) // num_actors)
  if exp.envs_per_actor >= needed or not unplayed_levels(exp, num_actors):
    return exp
  wider = dataclasses.replace(exp, envs_per_actor=needed)
  return wider if not unplayed_levels(wider, num_actors) else exp


def check_every_level_played(exp: Experiment, num_actors: int):
  """Refuses a run in which some levels would never be played."""
  unplayed = unplayed_levels(exp, num_actors)
  if unplayed:
    listed = ", ".join(unplayed[:5]) + (", ..." if len(unplayed) > 5 else "")
    raise ValueError(
        f"{len(unplayed)} of the {len(exp.levels)} levels would never be "
        f"played by {num_actors} actors x {exp.envs_per_actor} environments "
        f"({listed}): raise --num_actors or --envs_per_actor, or leave them "
        "unset to get enough.")


def resolve_queue(exp: Experiment, num_actors: int,
                  capacity: Optional[int] = None,
                  start_below: Optional[int] = None) -> tuple[int, int]:
  """(capacity, start threshold) of the learner's queue: the given ones or
  the defaults, checked (a ValueError says what is wrong)."""
  if capacity is None:
    capacity = default_queue_capacity(exp, num_actors)
  if start_below is None:
    start_below = default_actor_start_below(exp)
  check_queue_capacity(exp, capacity)
  check_policy_lag(exp, num_actors)
  check_actor_start_below(capacity, start_below)
  return capacity, start_below


def default_queue_capacity(exp: Experiment, num_actors: int) -> int:
  """Room for two batches or one unroll of every actor, whichever is more,
  so actors rarely block while memory stays bounded."""
  return max(2 * exp.config.batch_size, num_actors * exp.envs_per_actor)


def default_actor_start_below(exp: Experiment) -> int:
  """[ours] Actors start an unroll only while fewer than one batch less one
  unroll are queued, so that with their unroll enqueued the queue holds
  about one batch. When the learner is the bottleneck a trajectory then
  waits about one update in the queue and one staged (mean policy lag 2.0
  for the deep torso on Pong, against 2.5 at one batch and 4.5 with no
  threshold, at the same speed: docs/benchmarks.md); when the actors are,
  the queue is nearly empty and the threshold is never reached."""
  return max(1, exp.config.batch_size - exp.envs_per_actor)


def check_actor_start_below(capacity: int, start_below: int):
  """Refuses a start threshold above the queue's capacity."""
  if not 0 <= start_below <= capacity:
    raise ValueError(
        f"--actor_start_below={start_below} must be between 0 (actors never "
        f"wait before an unroll) and the queue capacity ({capacity}).")


def check_queue_capacity(exp: Experiment, capacity: int):
  """Refuses a queue that could never supply a batch or take an unroll."""
  if capacity < exp.config.batch_size:
    raise ValueError(
        f"The queue capacity ({capacity} trajectories) is smaller than the "
        f"batch size ({exp.config.batch_size}): the learner could never "
        "dequeue a batch. Raise --queue_capacity or lower --batch_size.")
  if capacity < exp.envs_per_actor:
    raise ValueError(
        f"The queue capacity ({capacity}) is smaller than one actor's unroll "
        f"({exp.envs_per_actor} trajectories); raise --queue_capacity.")


def check_policy_lag(exp: Experiment, num_actors: int):
  """Refuses a controlled policy lag the actors could never feed: each
  weights version gets one unroll per actor environment, so a batch made
  with one version needs at least batch_size environments in all."""
  if exp.config.policy_lag is None:
    return
  environments = num_actors * exp.envs_per_actor
  if environments < exp.config.batch_size:
    raise ValueError(
        f"--policy_lag={exp.config.policy_lag} needs at least --batch_size "
        f"({exp.config.batch_size}) actor environments, one unroll each per "
        f"weights version; {num_actors} actors x {exp.envs_per_actor} "
        f"environments = {environments}. Raise --num_actors or "
        "--envs_per_actor, or lower --batch_size.")
