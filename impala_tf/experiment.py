"""What a run trains on: the suite, its levels, the config, and factories.

An `Experiment` is everything the learner and every actor must agree on,
built once from plain arguments (the launcher's flags) and rebuilt the same
way in every process. The learner never creates an environment; actors
create theirs with `make_env(actor_index)`.

Levels are spread over environments round-robin: environment `j` of actor
`i` plays level `(i * envs_per_actor + j) % len(levels)`, so every level gets
the same number of environments when the counts divide (the paper gives each
DMLab-30 task the same number of actors). An Atari actor steps one game in
C++ (ale-py's vector environment), so there the unit is the actor: actor `i`
plays game `i % len(levels)`.
"""

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from impala_tf import envs
from impala_tf import presets

SUITES = ("atari57", "dmlab30", "catch")
DEFAULT_PRESET = {"atari57": "atari", "dmlab30": "dmlab30", "catch": "catch"}


@dataclasses.dataclass(frozen=True)
class Experiment:
  """See the module docstring.

  Attributes:
    suite: one of `SUITES`.
    levels: canonical level (game) names; a trajectory's `level_id` indexes
      this tuple.
    config: the hyperparameters.
    num_actions: size of the action set shared by all levels.
    observation_spec: name → (shape, dtype) of one observation.
    envs_per_actor: environments each actor steps in lockstep.
    env_options: suite-specific keyword arguments for the environments.
    frame_stack: the environments' `frame_stack` (see `envs.BatchedEnv`):
      S > 1 when frames are stacks that travel as single frames.
  """

  suite: str
  levels: tuple[str, ...]
  config: presets.Config
  num_actions: int
  observation_spec: Mapping[str, tuple]
  envs_per_actor: int
  env_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  frame_stack: int = 1

  def make_network(self):
    """The agent network (`networks.ImpalaNetwork`) for this experiment."""
    # Imported here: building and checking an Experiment needs no TF.
    from impala_tf import networks  # pylint: disable=g-import-not-at-top
    return networks.make_network(
        self.num_actions, self.config.torso, self.config.use_lstm,
        self.config.use_instruction)

  def trajectory_specs(self):
    """Field name → `tf.TensorSpec` of one trajectory as actors send it
    (`trajectory.restore_frames` turns a batch into the learner's input)."""
    from impala_tf import trajectory  # pylint: disable=g-import-not-at-top
    return trajectory.specs(self.config.unroll_length, self.num_actions,
                            self.observation_spec, self.config.use_lstm,
                            frame_stack=self.frame_stack)

  def level_ids(self, actor_index: int) -> np.ndarray:
    """int32 `[envs_per_actor]`: the level of each of the actor's envs."""
    if self.suite == "atari57":
      return np.full(self.envs_per_actor, actor_index % len(self.levels),
                     np.int32)
    first = actor_index * self.envs_per_actor
    return (np.arange(first, first + self.envs_per_actor) %
            len(self.levels)).astype(np.int32)

  def make_env(self, actor_index: int, seed: int = 0) -> envs.BatchedEnv:
    """The batched environment of actor `actor_index`."""
    level_ids = self.level_ids(actor_index)
    env_seed = seed * 100_003 + actor_index * 1_009
    if self.suite == "atari57":
      import atari57  # pylint: disable=g-import-not-at-top
      return atari57.make_batched(self.levels[level_ids[0]],
                                  self.envs_per_actor, seed=env_seed,
                                  **self.env_options)
    if self.suite == "dmlab30":
      import dmlab30  # pylint: disable=g-import-not-at-top
      return envs.DmEnvBatch(
          [dmlab30.make(self.levels[level], seed=env_seed + j,
                        **self.env_options)
           for j, level in enumerate(level_ids)], self.num_actions)
    from impala_tf.testing import catch  # pylint: disable=g-import-not-at-top
    return envs.DmEnvBatch(
        [catch.Catch(seed=env_seed + j) for j in range(self.envs_per_actor)],
        catch.NUM_ACTIONS)


def build(suite: str, levels: Optional[Sequence[str]] = None,
          config: Optional[presets.Config] = None, envs_per_actor: int = 8,
          env_options: Optional[Mapping[str, Any]] = None) -> Experiment:
  """Resolves names and checks the combination; errors say what is accepted.

  Args:
    suite: "atari57", "dmlab30" or "catch" (the small test environment).
    levels: level or game names; default Pong for Atari, all 30 levels for
      DMLab-30.
    config: hyperparameters; default the suite's preset.
    envs_per_actor: environments each actor steps.
    env_options: suite-specific environment keyword arguments (e.g.
      `full_action_space` for Atari, `level_cache_dir` for DMLab).
  """
  if suite not in SUITES:
    raise ValueError(f"Unknown suite {suite!r}; expected one of {SUITES}.")
  if envs_per_actor < 1:
    raise ValueError(f"envs_per_actor must be at least 1, got "
                     f"{envs_per_actor}.")
  config = config or presets.get(DEFAULT_PRESET[suite])
  env_options = dict(env_options or {})
  frame_stack = 1

  if suite == "atari57":
    import atari57  # pylint: disable=g-import-not-at-top
    levels = tuple(atari57.canonical_name(g) for g in (levels or ["pong"]))
    if len(levels) > 1:
      if env_options.get("full_action_space") is False:
        raise ValueError(
            "Several Atari games share one agent only with the full 18-action "
            "set (the paper's multi-task agent); drop full_action_space=False "
            f"or train one game. Games: {', '.join(levels)}.")
      env_options["full_action_space"] = True
    probe = atari57.make_batched(levels[0], 1, **env_options)
    num_actions, observation_spec = probe.num_actions, probe.observation_spec
    frame_stack = probe.frame_stack
    probe.close()
  elif suite == "dmlab30":
    import dmlab30  # pylint: disable=g-import-not-at-top
    levels = tuple(dmlab30.canonical_name(l) for l in (levels or
                                                        dmlab30.LEVELS))
    num_actions = dmlab30.NUM_ACTIONS
    observation_spec = {
        "frame": ((dmlab30.FRAME_HEIGHT, dmlab30.FRAME_WIDTH, 3), np.uint8),
        "instruction": ((env_options.get("instruction_length", 16),),
                        np.int32)}
  else:
    from impala_tf.testing import catch  # pylint: disable=g-import-not-at-top
    if levels and tuple(levels) != ("catch",):
      raise ValueError(f"The catch suite has one level, 'catch'; got "
                       f"{list(levels)}.")
    levels = ("catch",)
    num_actions = catch.NUM_ACTIONS
    observation_spec = {"frame": (catch.FRAME_SHAPE, np.uint8)}

  if config.use_instruction and "instruction" not in observation_spec:
    raise ValueError(f"The config reads an instruction (use_instruction=True)"
                     f" but suite {suite!r} has none; set "
                     "use_instruction=False.")
  if "instruction" in observation_spec and not config.use_instruction:
    observation_spec = {"frame": observation_spec["frame"]}
  return Experiment(suite=suite, levels=tuple(levels), config=config,
                    num_actions=num_actions,
                    observation_spec=dict(observation_spec),
                    envs_per_actor=envs_per_actor, env_options=env_options,
                    frame_stack=frame_stack)


def default_queue_capacity(exp: Experiment, num_actors: int) -> int:
  """Room for two batches or one unroll of every actor, whichever is more,
  so actors rarely block while memory stays bounded."""
  return max(2 * exp.config.batch_size, num_actors * exp.envs_per_actor)


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
