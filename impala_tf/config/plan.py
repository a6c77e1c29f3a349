"""A run's plan: everything a run is, resolved from its flags before it
starts, without TensorFlow.

`resolve(values, environ)` turns the launcher's flag values (a mapping of
flag name to value, as absl parses them) and the process environment
(`TF_CONFIG`) into a frozen `RunPlan`: the experiment (suite, levels,
hyperparameters, environments), the role this process plays, the actors,
the queue, the run directory and the loop's options. It makes every default
and every check; a bad flag or combination is a `PlanError` whose message
is the one line the user sees. The launcher hands the plan to a role
(`impala_tf.roles`); the tools that start runs (ablate, pbt, chaos, the
benchmarks) resolve their runs' plans the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import typing
from typing import Any, Mapping, Optional

from impala_tf.config import experiment as experiment_lib
from impala_tf.config import presets
from impala_tf.config import tf_levels
from impala_tf import suites

# What a process of a run does: the learner and actors as processes on this
# machine (local mode), as threads of this process, one cluster role, or
# acting and learning in one compiled program (anakin).
ROLES = ("local", "threads", "learner", "actor", "anakin", "inference")

# Config fields that are numbers or None take these words on the command
# line, as strings.
NONE_WORD = "none"
NUMBER_OR_NONE_TYPES = (typing.Optional[float], typing.Optional[int],
                        typing.Union[float, str, None])


class PlanError(ValueError):
  """A bad flag or combination; its message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class LoopOptions:
  """How the learner's loop reports, saves and guards the run."""
  log_interval_s: float = 5.0
  checkpoint_interval_s: float = 600.0
  max_nonfinite_updates: int = 5


@dataclasses.dataclass(frozen=True)
class AnakinOptions:
  """Anakin mode (`impala_tf.anakin`): the replicas the batch is split
  over (0: every GPU, else one CPU device; more than 1 on a CPU splits it
  into that many logical devices), the updates of one compiled call, and
  whether each replica's unroll is compiled with XLA."""
  replicas: int = 0
  iterations: int = 32  # Measured: docs/benchmarks.md "Anakin mode".
  xla: bool = True
  tf_env: str = ""  # "module:class" of the level's TF version.


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
  """Where the policy acts (`impala_tf.inference`): "actor" (each actor on
  its own copy) or "central" (one server on the learner's host batching
  up to `batch` environments, waiting at most `wait_s` for them, on
  `device`, at `port`, in a process of its own or in the learner's
  (`server`); each actor's environments in `groups` groups)."""
  mode: str = "actor"
  batch: int = 0
  wait_s: float = 0.0
  groups: int = 1
  device: str = ""
  port: Optional[int] = None
  server: str = "process"  # Or "learner": a thread of the learner.

  @property
  def central(self) -> bool:
    return self.mode == "central"


@dataclasses.dataclass(frozen=True)
class PbtOptions:
  """This run as member `member` of the population in `pbt_dir` (App. F)."""
  pbt_dir: str
  member: int
  burn_in_frames: int
  ready_episodes: int
  exploit_threshold: float
  initial: str
  anneal: bool = False


@dataclasses.dataclass(frozen=True)
class RunPlan:
  """A resolved run (see the module docstring).

  Attributes:
    experiment: what is trained (`experiment.Experiment`).
    role: one of `ROLES`.
    num_actors: actors of the run (processes or threads).
    seed: seeds environments and action sampling.
    logdir: the run directory (None for an actor, which has none).
    queue_capacity: trajectories the learner's queue holds (None for an
      actor).
    actor_start_below: actors start an unroll only below this queue fill.
    loop: the learner's loop options.
    task: an actor's index.
    learner_address: an actor's learner, HOST:PORT.
    port: the learner's TF server port (learner role).
    onednn, actor_threads, tf_log_level: how TensorFlow runs on the CPU.
    isolation, fork_children: how local mode starts its processes.
    connect_timeout_s, learner_wait_s: how an actor reaches its learner.
    force_unlock: take the run directory's lock from a host that holds it.
    pbt: population-based training, or None.
    anakin: anakin mode's options (role "anakin"), or None.
    inference: where the policy acts (`InferenceOptions`).
    notes: lines the process that trains says once at its start (levels
      left out with --skip_unavailable_levels).
  """
  experiment: experiment_lib.Experiment
  role: str
  num_actors: int
  seed: int = 0
  logdir: Optional[str] = None
  queue_capacity: Optional[int] = None
  actor_start_below: Optional[int] = None
  loop: LoopOptions = LoopOptions()
  task: int = 0
  learner_address: Optional[str] = None
  port: Optional[int] = None
  onednn: str = "auto"
  actor_threads: int = 1
  tf_log_level: Optional[int] = None
  isolation: str = "auto"
  fork_children: bool = True
  connect_timeout_s: float = 120.0
  learner_wait_s: float = 600.0
  force_unlock: bool = False
  pbt: Optional[PbtOptions] = None
  anakin: Optional[AnakinOptions] = None
  inference: InferenceOptions = InferenceOptions()
  notes: tuple[str, ...] = ()


def resolve(values: Mapping[str, Any],
            environ: Optional[Mapping[str, str]] = None, *,
            cpu_count: Optional[int] = None,
            now: Optional[float] = None) -> RunPlan:
  """The plan of the run that flag values `values` describe.

  Args:
    values: flag name -> value, as the launcher's flags parse them (every
      launcher flag; absent ones take the launcher's defaults).
    environ: the process environment (default `os.environ`): `TF_CONFIG`
      gives a cluster role when --job does not.
    cpu_count: CPUs of this machine (default `os.cpu_count()`): the default
      number of actors.
    now: the time a default run directory is named after (default now).

  Raises:
    PlanError: a bad flag or combination, said in one line.
    suites.SuiteUnavailableError: the suite's engine is not installed.
  """
  values = _Values(values)
  environ = os.environ if environ is None else environ
  job, task, learner_address = _role(values, environ)
  suite = _suite(values["suite"])
  suite.check_available()
  env_options = {option.key: values[option.flag] for option in suite.options
                 if values.get(option.flag) is not None}
  levels, notes = _playable_levels(suite, values, env_options)
  try:
    exp = experiment_lib.build(values["suite"], levels,
                               config_from(values, suite),
                               values.get("envs_per_actor"), env_options)
    exp, num_actors = _actors_for(exp, values, cpu_count)
    experiment_lib.check_every_level_played(exp, num_actors)
  except ValueError as e:
    raise PlanError(str(e)) from None
  run_mode = values.get("run_mode") or "processes"
  if job and run_mode == "anakin":
    raise PlanError("--run_mode=anakin runs on one machine, without cluster "
                    "roles; drop --job (or TF_CONFIG).")
  role = job or {"threads": "threads", "anakin": "anakin"}.get(run_mode,
                                                               "local")
  pbt = _pbt_options(values)
  anakin = _anakin_options(values, exp, pbt) if role == "anakin" else None
  common = dict(experiment=exp, role=role, num_actors=num_actors, task=task,
                learner_address=learner_address, notes=notes,
                inference=_inference_options(values, exp, role, num_actors,
                                             learner_address),
                **_process_options(values))
  if role in ("actor", "inference"):
    if not learner_address:
      raise PlanError(f"An {role} process needs --learner_address=HOST:PORT "
                      "(or TF_CONFIG).")
    learner_port(learner_address)  # Refuses a malformed address.
    if role == "inference" and not common["inference"].central:
      raise PlanError("--job=inference is central inference's server; give "
                      "--inference=central (and the same flags as the "
                      "learner).")
    return RunPlan(**common)
  return RunPlan(
      **common, logdir=_logdir(values, role, pbt, now), pbt=pbt,
      port=_port(values, role, learner_address),
      loop=LoopOptions(values.get("log_interval_s", 5.0),
                       values.get("checkpoint_interval_s", 600.0),
                       values.get("max_nonfinite_updates", 5)),
      isolation=values.get("isolation", "auto"),
      fork_children=values.get("fork_children", True),
      force_unlock=values.get("force_unlock", False), anakin=anakin,
      **_queue(exp, num_actors, values))


def _process_options(values) -> dict[str, Any]:
  """What every role's process takes from the flags as they are."""
  return dict(seed=values.get("seed", 0), onednn=values.get("onednn", "auto"),
              actor_threads=values.get("actor_threads", 1),
              tf_log_level=values.get("tf_log_level"),
              connect_timeout_s=values.get("connect_timeout_s", 120.0),
              learner_wait_s=values.get("learner_wait_s", 600.0))


class _Values(dict):
  """Flag values; a flag that was never defined reads as unset."""

  def __missing__(self, key):
    return None


def _suite(name: str) -> suites.Suite:
  try:
    return suites.get(name or "atari57")
  except ValueError as e:
    raise PlanError(f"--suite: {e}") from None


def _role(values, environ) -> tuple[Optional[str], int, Optional[str]]:
  """(job, actor index, learner address): --job and its flags, else
  TF_CONFIG, else (None, 0, None) for local and threads mode."""
  if values.get("job") is not None:
    return values["job"], values.get("task") or 0, values.get(
        "learner_address")
  raw = environ.get("TF_CONFIG")
  if not raw:
    return None, 0, None
  try:
    tf_config = json.loads(raw)
    job = tf_config["task"]["type"]
    task = int(tf_config["task"].get("index", 0))
    learner = tf_config["cluster"]["learner"][0]
  except (ValueError, KeyError, IndexError, TypeError) as e:
    raise PlanError(
        "TF_CONFIG must look like {\"cluster\": {\"learner\": [\"host:port\"]"
        "}, \"task\": {\"type\": \"actor\", \"index\": 0}}; could not read "
        f"it: {e!r}") from None
  if job not in ("learner", "actor", "inference"):
    raise PlanError(f"TF_CONFIG task type must be 'learner', 'actor' or "
                    f"'inference', got {job!r}.")
  return job, task, learner


def learner_port(address: str) -> int:
  """The port of a learner address HOST:PORT; a PlanError if malformed."""
  from impala_tf.runtime import server  # pylint: disable=g-import-not-at-top
  try:
    return server.split_address(address)[1]
  except ValueError as e:
    raise PlanError(f"--learner_address (or TF_CONFIG): {e}") from None


def config_from(values: Mapping[str, Any],
                suite: suites.Suite) -> presets.Config:
  """The preset (--preset, else the suite's for the levels) with every
  hyperparameter flag that was given."""
  levels = values.get("levels") or []
  try:
    config = presets.get(values.get("preset") or suite.preset_for(levels))
  except ValueError as e:
    raise PlanError(str(e)) from None
  changes = {}
  for field in dataclasses.fields(presets.Config):
    value = values.get(field.name)
    if value is None:
      continue
    if field.type in NUMBER_OR_NONE_TYPES:
      value = _number_or_none(field, str(value).strip().lower())
    changes[field.name] = value
  try:
    return config.replace(**changes)
  except ValueError as e:
    raise PlanError(str(e)) from None


def _number_or_none(field, word: str):
  """A numeric Config flag's value: a number, 'none', or (for
  clip_pg_rho_threshold) 'rho'."""
  if word == NONE_WORD:
    return None
  takes_rho = field.type == typing.Union[float, str, None]
  if takes_rho and word == presets.SAME_AS_RHO:
    return word
  number = int if field.type == typing.Optional[int] else float
  try:
    return number(word)
  except ValueError:
    extra = f", or '{presets.SAME_AS_RHO}'" if takes_rho else ""
    kind = "an integer" if number is int else "a number"
    raise PlanError(f"--{field.name} takes {kind} or 'none'{extra}, got "
                    f"{word!r}.") from None


def _playable_levels(suite, values, env_options):
  """(levels to train on, notes): those asked for (--levels, else the
  suite's), less those this machine cannot play with
  --skip_unavailable_levels; without it, a run with such levels is refused
  in one line that names them and why."""
  given = values.get("levels") or None
  try:
    levels = suite.resolve_levels(given)
  except ValueError as e:
    raise PlanError(str(e)) from None
  unavailable = suite.unavailable_levels(levels, env_options)
  if not unavailable:
    return given, ()
  playable = [level for level in levels if level not in unavailable]
  reasons = "; ".join(f"{level}: {why}" for level, why in unavailable.items())
  said = (f"{len(unavailable)} of the {len(levels)} {suite.name} level(s) "
          f"cannot run on this machine ({reasons})")
  if not playable:
    raise PlanError(f"{said}; none is left to train on.")
  if not values.get("skip_unavailable_levels"):
    raise PlanError(f"{said}. Leave them out of --levels, or pass "
                    f"--skip_unavailable_levels to train on the other "
                    f"{len(playable)}.")
  return playable, (f"Training on {len(playable)} of the {len(levels)} "
                    f"levels (--skip_unavailable_levels): {said}.",)


def _actors_for(exp, values, cpu_count):
  """(experiment, actors): --envs_per_actor and --num_actors, or where
  they are unset, enough that every level is played (the paper gives
  every task actors of its own): more environments per actor first, then
  more actors (a suite may give each actor one level, as Atari does)."""
  given = values.get("num_actors")
  if given is not None and given < 1:
    raise PlanError(f"--num_actors must be at least 1, got {given}.")
  num_actors = given or max(1, cpu_count or os.cpu_count() or 1)
  if values.get("envs_per_actor") is None:
    exp = experiment_lib.with_every_level_played(exp, num_actors)
  if given is None:
    while (num_actors < len(exp.levels) and
           experiment_lib.unplayed_levels(exp, num_actors)):
      num_actors += 1
  return exp, num_actors


def _pbt_options(values) -> Optional[PbtOptions]:
  """--pbt_dir and --member come together."""
  if values.get("pbt_dir") is None:
    if values.get("member") is not None:
      raise PlanError("--member needs --pbt_dir (the population's "
                      "directory).")
    return None
  if values.get("member") is None:
    raise PlanError("--pbt_dir needs --member=<index> (this run's place in "
                    "the population).")
  return PbtOptions(values["pbt_dir"], values["member"],
                    values.get("pbt_burn_in_frames", 20_000_000),
                    values.get("pbt_ready_episodes", 5_000),
                    values.get("pbt_exploit_threshold", 5.0),
                    values.get("pbt_initial", "table_d1"),
                    bool(values.get("pbt_anneal", False)))


def _anakin_options(values, exp, pbt) -> AnakinOptions:
  """Anakin mode's options, and what it refuses: a level without a
  TensorFlow version, what needs actors and a queue."""
  try:
    tf_env = tf_levels.check(exp.suite, exp.levels)
  except ValueError as e:
    raise PlanError(str(e)) from None
  config = exp.config
  refused = [flag for flag, given in (
      ("--replay_capacity", config.replay_capacity),
      ("--policy_lag", config.policy_lag is not None),
      ("--pbt_dir", pbt is not None)) if given]
  if refused:
    raise PlanError(f"--run_mode=anakin acts with the weights it learns "
                    f"with, without actors, a queue or replay; drop "
                    f"{', '.join(refused)}.")
  replicas = values.get("anakin_replicas") or 0
  if replicas and config.batch_size % replicas:
    raise PlanError(f"--batch_size={config.batch_size} cannot be split "
                    f"evenly over --anakin_replicas={replicas}; give a "
                    "divisor of the batch.")
  return AnakinOptions(replicas=replicas,
                       iterations=(values.get("anakin_iterations")
                                   or AnakinOptions.iterations),
                       xla=bool(values.get("anakin_xla", True)),
                       tf_env=tf_env)


def _inference_options(values, exp, role, num_actors,
                       learner_address) -> InferenceOptions:
  """Where the policy acts, and what central inference refuses."""
  if (values.get("inference") or "actor") == "actor":
    return InferenceOptions()
  if role == "anakin":
    raise PlanError("--inference=central is for runs with actors; "
                    "--run_mode=anakin has none (its policy acts inside "
                    "the compiled program). Drop one of them.")
  if exp.config.policy_lag is not None:
    raise PlanError("--policy_lag needs every actor to act with the "
                    "weights of one version per unroll, which the shared "
                    "inference server does not keep; use --inference=actor "
                    "with --policy_lag.")
  groups = values.get("inference_groups") or 1
  if exp.envs_per_actor % groups:
    raise PlanError(f"--inference_groups={groups} does not divide "
                    f"--envs_per_actor={exp.envs_per_actor}; give a divisor "
                    "of it (each group steps the same number of "
                    "environments).")
  batch = values.get("inference_batch") or num_actors * exp.envs_per_actor
  port = values.get("inference_port")
  if port is None:
    # Next to the learner's TF server (local mode picks one itself).
    base = ((values.get("port") if role == "learner" else None) or
            (learner_port(learner_address) if learner_address else None))
    port = base + 1 if base else None
  wait_ms = values.get("inference_wait_ms")
  return InferenceOptions(
      mode="central", batch=batch,
      wait_s=InferenceOptions.wait_s if wait_ms is None else wait_ms / 1e3,
      groups=groups, device=values.get("inference_device") or "", port=port,
      server=values.get("inference_server") or "process")


def _logdir(values, role, pbt, now) -> Optional[str]:
  """--logdir; else a population member's directory; else, for a local or
  threads run, runs/<suite>-<time>. A cluster learner may run without."""
  if values.get("logdir"):
    return values["logdir"]
  if pbt is not None:
    from impala_tf.pbt import store  # pylint: disable=g-import-not-at-top
    return store.member_logdir(pbt.pbt_dir, pbt.member)
  if role == "learner":
    return None
  stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
  return os.path.join("runs", f"{values.get('suite') or 'atari57'}-{stamp}")


def _port(values, role, learner_address) -> Optional[int]:
  if role != "learner":
    return None
  port = values.get("port") or (learner_port(learner_address)
                                if learner_address else None)
  if not port:
    raise PlanError("The learner needs --port (or TF_CONFIG's learner "
                    "address).")
  return port


def _queue(exp, num_actors, values) -> dict[str, int]:
  """The queue's capacity and the actors' start threshold, checked."""
  try:
    capacity, start_below = experiment_lib.resolve_queue(
        exp, num_actors, values.get("queue_capacity"),
        values.get("actor_start_below"))
  except ValueError as e:
    raise PlanError(str(e)) from None
  return {"queue_capacity": capacity, "actor_start_below": start_below}


def check_run_directory(logdir: str) -> None:
  """The run directory must be a directory this process can create and
  write; a URL (gs://...) is checked by TF when the learner starts."""
  if "://" in logdir:
    return
  try:
    os.makedirs(logdir, exist_ok=True)
  except FileExistsError:
    raise PlanError(f"--logdir {logdir} is a file, not a directory.") from None
  except OSError as e:
    raise PlanError(f"--logdir {logdir} cannot be created: "
                    f"{e.strerror}.") from None
  probe = os.path.join(logdir, f".write-test-{os.getpid()}")
  try:
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise PlanError(f"--logdir {logdir} is not writable: "
                    f"{e.strerror}.") from None


def check_resume(plan: RunPlan) -> list[str]:
  """The run directory's earlier run may be resumed by this plan: the same
  network and levels. Returns the lines saying what else changed."""
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  try:
    return run_dir.check_resume(plan.logdir, plan.experiment)
  except run_dir.ResumeMismatchError as e:
    raise PlanError(str(e)) from None
