r"""Trains an IMPALA agent: `python -m impala_tf.launch [--flags]`.

With no arguments it trains on Atari Pong with the paper's Atari preset
(Table G.1) and a learner plus actor processes on this machine:

  python -m impala_tf.launch                                  # Pong
  python -m impala_tf.launch --suite=atari57 --levels=breakout --total_frames=50000000
  python -m impala_tf.launch --suite=dmlab30                  # all 30 levels, one agent
  python -m impala_tf.launch --suite=catch --run_mode=threads # the small test task

Local mode (no --job) starts the learner and --num_actors actor processes on
loopback ports inside a private network namespace when the machine allows it
(a TF server listens on all interfaces with no authentication; see
docs/cluster.md), supervises them, restarts actors that die, and stops them
all on Ctrl-C, SIGTERM or when the frame budget is spent. `--run_mode=threads`
runs the actors as threads of one process instead.

Cluster mode runs one role: `--job=learner --port=P` or `--job=actor --task=i
--learner_address=HOST:P`, or the role and addresses from `TF_CONFIG`
({"cluster": {"learner": ["host:port"]}, "task": {"type": "actor", "index": 3}}).

Every hyperparameter of the preset (impala_tf/presets.py) is also a flag of
the same name; unset flags keep the preset's value.
"""

import dataclasses
import json
import os
import signal
import sys
import threading
import time
import typing

from absl import app
from absl import flags
from absl import logging

from impala_tf import errors
from impala_tf import tf_startup

FLAGS = flags.FLAGS

flags.DEFINE_string("suite", "atari57", "Environment suite: atari57, dmlab30, "
                    "catch, or one another package registers "
                    "(impala_tf.suites).")
flags.DEFINE_list("levels", [], "Games (Atari) or levels (DMLab-30); default "
                  "the suite's (Pong for Atari, all 30 levels for DMLab-30).")
flags.DEFINE_bool("skip_unavailable_levels", False, "Train on the levels "
                  "this machine can play and leave out those it cannot (a "
                  "DeepMind Lab build without a level's map or the psychlab "
                  "image set); without it such a run is refused with the "
                  "levels and why.")
flags.DEFINE_string("preset", None, "Hyperparameter preset (atari, "
                    "dmlab_single_task, dmlab30, catch); default by suite.")
flags.DEFINE_integer("num_actors", None, "Actor processes (or threads); "
                     "default: one per CPU core, or more where a run's "
                     "levels need them (a suite that gives each actor one "
                     "level, as Atari does).", lower_bound=1)
flags.DEFINE_integer("envs_per_actor", None, "Environments each actor steps "
                     "in lockstep; default by suite (16 for Atari, 4 for "
                     "DMLab, 8 for catch), or more where the run's levels "
                     "need them: every level gets an environment.",
                     lower_bound=1)
flags.DEFINE_integer("actor_threads", 1, "TF threads in each actor process "
                     "(intra- and inter-op). One costs the least CPU per "
                     "frame when the actors, the learner and the "
                     "environments share a few cores; 0 lets TF decide.",
                     lower_bound=0)
flags.DEFINE_integer("queue_capacity", None, "Trajectories the learner's "
                     "queue holds; default max(2 x batch, one unroll of "
                     "every actor).", lower_bound=1)
flags.DEFINE_integer("actor_start_below", None, "Actors start an unroll "
                     "only while fewer trajectories than this are queued, so "
                     "a learner-bound run's queue adds little policy lag; "
                     "default one batch less one actor's unroll (at least "
                     "1), 0: actors never wait before an unroll (only for "
                     "room to enqueue it).", lower_bound=0)
flags.DEFINE_string("logdir", None, "Checkpoints, TensorBoard summaries and "
                    "result.json; an existing run there is resumed. Default "
                    "runs/<suite>-<time>.")
flags.DEFINE_integer("seed", 0, "Seeds environments and action sampling.",
                     lower_bound=0)
flags.DEFINE_float("log_interval_s", 5.0, "Seconds between progress lines.",
                   lower_bound=0.1)
flags.DEFINE_bool("force_unlock", False, "Take the run directory\'s lock even "
                  "if another host holds it (when that run is known to be "
                  "gone).")
flags.DEFINE_enum("onednn", "auto", ["auto", "on", "off"], "TensorFlow's "
                  "oneDNN CPU kernels, decided per process before TF starts "
                  "(TF leaves them off on CPUs without AVX-512 VNNI/BF16 or "
                  "AMX): auto = the rule of impala_tf/cpu.py, measured per "
                  "role (today on everywhere). A TF_ENABLE_ONEDNN_OPTS you "
                  "set wins.")
flags.DEFINE_integer("tf_log_level", None, "TensorFlow's C++ log level in "
                     "every process (TF_CPP_MIN_LOG_LEVEL: 0 all, 1 no INFO, "
                     "2 no WARNING, 3 no ERROR either). Default: "
                     "TF_CPP_MIN_LOG_LEVEL if set, else 3, which hides TF's "
                     "start-up lines (oneDNN notices, CUDA probing).",
                     lower_bound=0, upper_bound=3)
flags.DEFINE_integer("max_nonfinite_updates", 5, "The run stops, as "
                     "diverged, after this many updates in a row with a "
                     "non-finite loss or gradient (none is ever applied).",
                     lower_bound=1)
flags.DEFINE_float("checkpoint_interval_s", 600.0, "Seconds between "
                   "checkpoints (one is also written at the end).",
                   lower_bound=1.0)
flags.DEFINE_enum("run_mode", "processes", ["processes", "threads"],
                  "Local mode: actors as processes or as threads.")
flags.DEFINE_enum("isolation", "auto", ["auto", "off"], "Local process mode: "
                  "run in a private network namespace when possible.")
flags.DEFINE_bool("fork_children", True, "Local process mode: fork the "
                  "learner and actors from one process that imported "
                  "TensorFlow once, so they share its memory (about 180 "
                  "MiB per process), instead of starting each afresh.")
flags.DEFINE_enum("job", None, ["learner", "actor"], "Cluster mode: the role "
                  "of this process (default: TF_CONFIG, else local mode).")
flags.DEFINE_integer("task", 0, "Cluster mode: the actor index.",
                     lower_bound=0)
flags.DEFINE_integer("port", None, "Cluster mode, learner: the TF server "
                     "port.", lower_bound=1, upper_bound=65535)
flags.DEFINE_string("learner_address", None, "Cluster mode, actor: the "
                    "learner's HOST:PORT.")
flags.DEFINE_float("connect_timeout_s", 120.0, "Actor: how long to keep "
                   "trying to reach the learner.")
flags.DEFINE_float("learner_wait_s", 600.0, "Cluster mode, actor: when the "
                   "learner goes away (crashed, killed, restarting), wait "
                   "this long for it to come back at the same address, "
                   "then reconnect and go on, in the same process (same "
                   "pid). 0: exit with code 1 at once instead, for a "
                   "supervisor that restarts actors.", lower_bound=0.0)
flags.DEFINE_string("pbt_dir", None, "Population-based training (App. F): "
                    "this run is member --member of the population in this "
                    "directory (a local path, NFS or gs://); --logdir "
                    "defaults to DIR/member-<i>. See impala_tf/pbt.")
flags.DEFINE_integer("member", None, "With --pbt_dir: this member's index.",
                     lower_bound=0)
flags.DEFINE_integer("pbt_burn_in_frames", 20_000_000, "PBT: a member's own "
                     "frames before it first exploits or explores (App. F: "
                     "20M).", lower_bound=0)
flags.DEFINE_integer("pbt_ready_episodes", 5_000, "PBT: new episode returns "
                     "a member collects between ready steps (App. F: 5,000).",
                     lower_bound=1)
flags.DEFINE_float("pbt_exploit_threshold", 5.0, "PBT: copy the member drawn "
                   "if its fitness is higher by more than this (App. F: 5 "
                   "points of the capped normalised score, in percent; in "
                   "return units for a single level).")
flags.DEFINE_enum("pbt_initial", "table_d1", ["table_d1", "config"], "PBT: a "
                  "new member draws its learning rate, entropy cost and "
                  "RMSProp epsilon from Table D.1's ranges (table_d1), or "
                  "starts from the preset and flags (config).")
# One flag per hyperparameter of presets.Config; None keeps the preset value.
_CONFIG_FLAG_HELP = "Preset override (see impala_tf/presets.py)."
# Config fields that are numbers or None take these words, as strings.
_NONE_WORD = "none"


def _define_config_flags():
  from impala_tf import presets  # pylint: disable=g-import-not-at-top
  for field in dataclasses.fields(presets.Config):
    kind = field.type
    text = presets.FIELD_HELP.get(field.name, "") + " " + _CONFIG_FLAG_HELP
    if kind is bool:
      flags.DEFINE_bool(field.name, None, text)
    elif kind is int:
      flags.DEFINE_integer(field.name, None, text)
    elif kind is float:
      flags.DEFINE_float(field.name, None, text)
    elif kind is str:
      flags.DEFINE_string(field.name, None, text)
    elif kind in (typing.Optional[float], typing.Optional[int],
                  typing.Union[float, str, None]):
      flags.DEFINE_string(field.name, None, text + " A number, or 'none'.")
    else:
      raise TypeError(f"No flag type for Config.{field.name}: {kind}")


_define_config_flags()


def _define_suite_option_flags():
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
            float: flags.DEFINE_float, str: flags.DEFINE_string}
  for option in suites.all_options().values():
    define[option.kind](option.flag, None, option.help)


_define_suite_option_flags()


class UsageError(ValueError):
  """A bad flag or combination; printed without a traceback."""


def _suite():
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  try:
    return suites.get(FLAGS.suite)
  except ValueError as e:
    raise UsageError(f"--suite: {e}") from None


def _config_from_flags():
  from impala_tf import presets  # pylint: disable=g-import-not-at-top
  config = presets.get(FLAGS.preset or _suite().preset_for(FLAGS.levels))
  changes = {}
  for field in dataclasses.fields(presets.Config):
    value = FLAGS[field.name].value
    if value is None:
      continue
    if field.type in (typing.Optional[float], typing.Optional[int],
                      typing.Union[float, str, None]):
      value = _number_or_none(field, value.strip().lower())
    changes[field.name] = value
  return config.replace(**changes)


def _number_or_none(field, word: str):
  """A numeric Config flag's value: a number, 'none', or (for
  clip_pg_rho_threshold) 'rho'."""
  from impala_tf import presets  # pylint: disable=g-import-not-at-top
  if word == _NONE_WORD:
    return None
  if field.type == typing.Union[float, str, None] and (
      word == presets.SAME_AS_RHO):
    return word
  number = int if field.type == typing.Optional[int] else float
  try:
    return number(word)
  except ValueError:
    extra = (f", or '{presets.SAME_AS_RHO}'"
             if field.type == typing.Union[float, str, None] else "")
    kind = "an integer" if number is int else "a number"
    raise UsageError(f"--{field.name} takes {kind} or 'none'{extra}, got "
                     f"{word!r}.") from None


def _tf_config_role():
  """(job, task, learner_address) from TF_CONFIG, or None."""
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    return None
  try:
    tf_config = json.loads(raw)
    job = tf_config["task"]["type"]
    task = int(tf_config["task"].get("index", 0))
    learner = tf_config["cluster"]["learner"][0]
  except (ValueError, KeyError, IndexError, TypeError) as e:
    raise UsageError(
        "TF_CONFIG must look like {\"cluster\": {\"learner\": [\"host:port\"]"
        "}, \"task\": {\"type\": \"actor\", \"index\": 0}}; could not read "
        f"it: {e!r}") from None
  if job not in ("learner", "actor"):
    raise UsageError(f"TF_CONFIG task type must be 'learner' or 'actor', "
                     f"got {job!r}.")
  return job, task, learner


def _build_experiment():
  """The experiment the flags describe; raises UsageError when they are bad."""
  from impala_tf import experiment  # pylint: disable=g-import-not-at-top
  suite = _suite()
  suite.check_available()
  env_options = {option.key: FLAGS[option.flag].value
                 for option in suite.options
                 if FLAGS[option.flag].value is not None}
  try:
    levels = _playable_levels(suite, env_options)
    exp = experiment.build(FLAGS.suite, levels, _config_from_flags(),
                           FLAGS.envs_per_actor, env_options)
    exp, num_actors = _actors_for(exp)
    experiment.check_every_level_played(exp, num_actors)
    return exp, num_actors
  except ValueError as e:
    raise UsageError(str(e)) from None


def _actors_for(exp):
  """(experiment, actors): --envs_per_actor and --num_actors, or where
  they are unset, enough that every level is played (the paper gives
  every task actors of its own): more environments per actor first, then
  more actors (a suite may give each actor one level, as Atari does)."""
  if FLAGS.num_actors is not None and FLAGS.num_actors < 1:
    raise UsageError(f"--num_actors must be at least 1, got "
                     f"{FLAGS.num_actors}.")
  from impala_tf import experiment  # pylint: disable=g-import-not-at-top
  num_actors = FLAGS.num_actors or max(1, os.cpu_count() or 1)
  if FLAGS.envs_per_actor is None:
    exp = experiment.with_every_level_played(exp, num_actors)
  if FLAGS.num_actors is None:
    while (num_actors < len(exp.levels) and
           experiment.unplayed_levels(exp, num_actors)):
      num_actors += 1
  return exp, num_actors


def _playable_levels(suite, env_options):
  """The levels to train on: those asked for (`--levels`, else the
  suite's), less those this machine cannot play with
  --skip_unavailable_levels; without it, a run with such levels is
  refused in one line that names them and why."""
  levels = suite.resolve_levels(FLAGS.levels or None)
  unavailable = suite.unavailable_levels(levels, env_options)
  if not unavailable:
    return FLAGS.levels or None
  playable = [level for level in levels if level not in unavailable]
  reasons = "; ".join(f"{level}: {why}" for level, why in unavailable.items())
  said = (f"{len(unavailable)} of the {len(levels)} {suite.name} level(s) "
          f"cannot run on this machine ({reasons})")
  if not playable:
    raise UsageError(f"{said}; none is left to train on.")
  if not FLAGS.skip_unavailable_levels:
    raise UsageError(f"{said}. Leave them out of --levels, or pass "
                     f"--skip_unavailable_levels to train on the other "
                     f"{len(playable)}.")
  global _LEVELS_NOTE
  _LEVELS_NOTE = (f"Training on {len(playable)} of the {len(levels)} "
                  f"levels (--skip_unavailable_levels): {said}.")
  return playable


# What `_playable_levels` left out, said once by the process that trains
# (the learner, or threads mode).
_LEVELS_NOTE = None


def _queue_capacity(exp, num_actors) -> int:
  from impala_tf import experiment  # pylint: disable=g-import-not-at-top
  capacity = FLAGS.queue_capacity
  if capacity is None:
    capacity = experiment.default_queue_capacity(exp, num_actors)
  try:
    experiment.check_queue_capacity(exp, capacity)
    experiment.check_policy_lag(exp, num_actors)
    experiment.check_actor_start_below(capacity, _actor_start_below(exp))
  except ValueError as e:
    raise UsageError(str(e)) from None
  return capacity


def _actor_start_below(exp) -> int:
  from impala_tf import experiment  # pylint: disable=g-import-not-at-top
  if FLAGS.actor_start_below is None:
    return experiment.default_actor_start_below(exp)
  return FLAGS.actor_start_below


def _check_resume(exp) -> list[str]:
  from impala_tf import run_dir  # pylint: disable=g-import-not-at-top
  try:
    return run_dir.check_resume(FLAGS.logdir, exp)
  except run_dir.ResumeMismatchError as e:
    raise UsageError(str(e)) from None


def _stop_on_signals(stop: threading.Event):
  """SIGTERM (the supervisor, a cluster manager) and SIGINT (Ctrl-C) end
  the run cleanly: the current update finishes, a checkpoint is saved and
  the queue closed, instead of dying mid-write."""
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: stop.set())


def _log(message: str):
  print(message, flush=True)


def _configure_cpu(exp, role: str) -> str:
  """Decides oneDNN for this process before TF starts; returns the words
  for the start-up line (what runs where, and why)."""
  from impala_tf import cpu  # pylint: disable=g-import-not-at-top
  info = cpu.read_cpu_info()
  choice = cpu.configure_onednn(FLAGS.onednn, role, exp.config.torso, info)
  tf_startup.import_tensorflow(without_keras=True)
  here = "on" if cpu.tf_onednn_enabled() else "off"
  if role == "actor":
    return f"{info.describe()}; onednn {here} ({choice.source})"
  if choice.source == "user":
    actors = f"{'on' if choice.enabled else 'off'} (user)"
  elif FLAGS.onednn == "auto":
    actors = ("on" if cpu.auto_onednn("actor", exp.config.torso, info)
              else "off") + " (auto) on this CPU"
  else:
    actors = f"{FLAGS.onednn} (flag)"
  return (f"{info.describe()}; onednn {here} in the learner "
          f"({choice.source}), {actors} in actors")


def _extra_parts(exp) -> list:
  """The learner-loop parts this run adds to the standard ones: a
  population member's with --pbt_dir."""
  if not FLAGS.pbt_dir:
    return []
  from impala_tf.pbt import member as member_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.pbt import rules  # pylint: disable=g-import-not-at-top
  del exp
  return [member_lib.PopulationMember(
      FLAGS.pbt_dir, FLAGS.member, FLAGS.logdir,
      rules.Rules(burn_in_frames=FLAGS.pbt_burn_in_frames,
                  ready_episodes=FLAGS.pbt_ready_episodes,
                  exploit_threshold=FLAGS.pbt_exploit_threshold),
      seed=FLAGS.seed, initial=FLAGS.pbt_initial)]


def _run_learner_role(exp, port: int, num_actors: int):
  cpu_line = _configure_cpu(exp, "learner")
  from impala_tf import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from impala_tf import learner_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import channels as channels_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import weights as weights_runtime  # pylint: disable=g-import-not-at-top

  capacity = _queue_capacity(exp, num_actors)
  _log(f"Learner on {cpu_line}.")
  if _LEVELS_NOTE:
    _log(_LEVELS_NOTE)
  from impala_tf import cpu  # pylint: disable=g-import-not-at-top
  note = cpu.precision_note(exp.config.precision, cpu.read_cpu_info())
  if note:
    _log(f"Precision {exp.config.precision}: {note}")
  server = server_lib.LearnerServer.start(port)
  _log(f"Learner: TF server on port {port}; {exp.suite} "
       f"{','.join(exp.levels)}; {exp.config.torso} network; batch "
       f"{exp.config.batch_size}, unroll {exp.config.unroll_length}; queue "
       f"capacity {capacity}, actors start below {_actor_start_below(exp)}; "
       f"{exp.config.total_frames:,} frames.")
  learner = learner_lib.Learner(exp.config, exp.make_network,
                                exp.observation_spec)
  channels = channels_lib.host(
      exp, weights_runtime.num_elements(learner.variables), capacity,
      server.device, start_below=_actor_start_below(exp))
  stop = threading.Event()
  _stop_on_signals(stop)
  if FLAGS.logdir:
    _check_resume(exp)
  learner_loop.run_learner(
      exp, learner, channels, queue_capacity=capacity,
      logdir=FLAGS.logdir, log_interval_s=FLAGS.log_interval_s,
      checkpoint_interval_s=FLAGS.checkpoint_interval_s, stop=stop, log=_log,
      max_nonfinite_updates=FLAGS.max_nonfinite_updates,
      extra_parts=_extra_parts(exp))


# In an actor that lost its learner and re-executed itself to wait for it
# (`_wait_for_learner`): when the outage began (seconds since the epoch).
_OUTAGE_ENV = "IMPALA_TF_LEARNER_LOST_AT"


def _run_actor_role(exp, task: int, learner_address: str):
  """Connects to the learner and acts until its queue closes.

  When the learner goes away the actor waits for it (`_wait_for_learner`)
  and comes back here in a fresh process image with the same pid:
  `lost_at` is then when the outage began, and the connection gets what
  is left of --learner_wait_s.
  """
  cpu_line = _configure_cpu(exp, "actor")
  tf = tf_startup.import_tensorflow()
  from impala_tf import actor_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import channels as channels_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import queue as queue_runtime  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import weights as weights_runtime  # pylint: disable=g-import-not-at-top

  lost_at = _outage_start()
  if lost_at is None:
    timeout_s = FLAGS.connect_timeout_s
    say = lambda m: _log(f"Actor {task}: {m}")
  else:
    # One line per outage: it was said when the learner went away.
    timeout_s = lost_at + FLAGS.learner_wait_s - time.time()
    say = lambda m: None
  # Before TF's context exists (the connection below creates it).
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.actor_threads)
  tf.config.threading.set_inter_op_parallelism_threads(FLAGS.actor_threads)
  try:
    if timeout_s <= 0:
      raise server_lib.LearnerUnreachableError(
          "the wait was over before this process could connect")
    device = server_lib.connect_to_learner(
        learner_address, timeout_s=timeout_s, quiet_s=15.0, log=say)
    # Everything but the queue and weight ops runs on this process's CPU.
    with tf.device(server_lib.LOCAL_CPU):
      network = actor_loop.build_actor_network(exp)
    channels = channels_lib.attach(
        exp, weights_runtime.num_elements(network.trainable_variables),
        device, timeout_s=max(timeout_s, 5.0))
  except (server_lib.LearnerUnreachableError,
          queue_runtime.QueueNotFoundError) as e:
    if lost_at is None:
      raise
    raise server_lib.LearnerLostError(
        f"Actor {task}: the learner at {learner_address} did not come back "
        f"within --learner_wait_s={FLAGS.learner_wait_s:g} s ({e}); "
        "stopping.") from None
  except (tf.errors.OpError, TypeError) as e:
    # The learner went away while this actor was connecting (TF's names for
    # it: `server_lib.is_learner_lost`); during a reconnection, the same
    # outage goes on.
    if not server_lib.is_learner_lost(e):
      raise
    first = (getattr(e, "message", None) or str(e)).strip().splitlines()
    _wait_for_learner(
        learner_address,
        f"Actor {task} lost the learner while connecting "
        f"({first[0] if first else type(e).__name__})", lost_at)
  levels = sorted({exp.levels[i] for i in exp.level_ids(task)})
  joined = (f"connected to {learner_address}" if lost_at is None else
            f"reconnected to {learner_address} after "
            f"{time.time() - lost_at:.0f} s without it")
  os.environ.pop(_OUTAGE_ENV, None)  # A later outage is a new one.
  _log(f"Actor {task}: {joined}; stepping {exp.envs_per_actor} environments "
       f"({', '.join(levels)}) on {cpu_line}.")
  try:
    with tf.device(server_lib.LOCAL_CPU):
      actor_loop.run_actor(exp, task, channels, seed=FLAGS.seed, log=_log,
                           network=network)
  except server_lib.LearnerLostError as e:
    _wait_for_learner(learner_address, str(e), None)


def _outage_start():
  """When this actor's learner went away, if this process image was
  started to wait for it (`_wait_for_learner`); else None."""
  raw = os.environ.get(_OUTAGE_ENV)
  if raw is None:
    return None
  try:
    return float(raw)
  except ValueError:
    raise UsageError(f"{_OUTAGE_ENV} (set by an actor for its next process "
                     f"image) must be a time in seconds, got {raw!r}; unset "
                     "it.") from None


def _wait_for_learner(learner_address: str, loss: str, lost_at):
  """Waits for a learner that went away: re-executes this process (same
  pid, same command line and environment) to reconnect, or with
  --learner_wait_s=0 raises `LearnerLostError` (exit code 1).

  Why a new process image: TF's remote eager context cannot be pointed at a
  restarted server in-process (its ops keep failing on the old
  connection), and a restart by a supervisor would lose the pid and need
  one. `loss` says how the learner was lost (said once, for a new outage);
  `lost_at` is when an ongoing outage began (None: a new one).
  """
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  if FLAGS.learner_wait_s <= 0:
    raise server_lib.LearnerLostError(f"{loss}; stopping.")
  if lost_at is None:
    lost_at = time.time()
    _log(f"{loss}; waiting up to {FLAGS.learner_wait_s:g} s for it to come "
         f"back at {learner_address}.")
  os.environ[_OUTAGE_ENV] = repr(lost_at)
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(sys.executable, sys.orig_argv)


# glibc's malloc gives threads that allocate at once their own arenas (up
# to 8 per core), and TF's thread pools keep memory in each of them.
MALLOC_ARENA_MAX_ENV = "MALLOC_ARENA_MAX"
# [ours] Two arenas per process: the whole run's PSS 60 MiB lower at the
# same speed (docs/benchmarks.md).
MALLOC_ARENAS = "2"


# [ours] How long the learner may take to stop after SIGTERM (Ctrl-C): it
# finishes the update under way (the first one compiles it), saves a
# checkpoint and exports the policy. On a busy 2-core machine that took
# more than the supervisor's default 5 s, and the learner was killed
# before its last checkpoint. Actors keep the default: they only stop
# stepping.
LEARNER_STOP_GRACE_S = 60.0


def _run_local(exp, num_actors: int, argv):
  # Children only: glibc reads it once, when a process starts. A user's
  # setting wins.
  os.environ.setdefault(MALLOC_ARENA_MAX_ENV, MALLOC_ARENAS)
  from impala_tf.runtime import isolation  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import processes  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top

  # The run directory as resolved here (a default one has the time in its
  # name): every child must use the same.
  this = [sys.executable, "-m", "impala_tf.launch",
          *_without_flag(argv[1:], "logdir"), f"--logdir={FLAGS.logdir}"]
  if (FLAGS.isolation == "auto" and not isolation.is_isolated() and
      isolation.private_network_available()):
    # The same launch again, inside a network namespace with only loopback.
    supervisor = processes.Supervisor(log=_log)
    # Longer than the learner's inside, so the inner launcher decides.
    supervisor.start("launcher", isolation.isolated_argv(this),
                     grace_s=LEARNER_STOP_GRACE_S + 10)
    outcome = supervisor.run_until("launcher")
    return _exit_code(outcome)

  from impala_tf import run_dir  # pylint: disable=g-import-not-at-top
  template = _start_template(exp)
  supervisor = processes.Supervisor(
      log=_log,
      status_path=os.path.join(FLAGS.logdir, run_dir.ACTORS_STATUS_FILE),
      template=template)
  try:
    port = server_lib.free_port()
    if not isolation.is_isolated():
      _log(isolation.exposure_warning(port))
    supervisor.start("learner", this + ["--job=learner", f"--port={port}"],
                     grace_s=LEARNER_STOP_GRACE_S)
    for task in range(num_actors):
      supervisor.start(f"actor_{task}", this + [
          "--job=actor", f"--task={task}",
          f"--learner_address=127.0.0.1:{port}"], restart=True)
    outcome = supervisor.run_until("learner")
  finally:
    supervisor.terminate_all()
    if template is not None:
      template.close()
  if outcome.crash_loop is not None:
    # The learner was stopped like any other way (a last checkpoint of its
    # finite state); the run failed, and this is why.
    message = (f"actors failed {supervisor.crash_loop_count} times in "
               f"{supervisor.crash_loop_window_s / 60:g} min with the same "
               f"error, so the run stopped: {outcome.crash_loop}")
    _mark_failed(message)
    raise errors.RunError(message)
  return _exit_code(outcome)


def _start_template(exp):
  """The process the learner and actors are forked from
  (`--fork_children`, `runtime.template`), or None to start each afresh."""
  if not FLAGS.fork_children:
    return None
  from impala_tf import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import template as template_lib  # pylint: disable=g-import-not-at-top
  # TF reads its oneDNN setting once, when it loads: forked children share
  # the template's, so the roles must agree on it.
  info = cpu.read_cpu_info()
  torso = exp.config.torso
  learner = cpu.configure_onednn(FLAGS.onednn, "learner", torso, info)
  actor = cpu.configure_onednn(FLAGS.onednn, "actor", torso, info)
  if learner.enabled != actor.enabled:
    _log("The learner and actors run with different oneDNN settings, so "
         "each starts afresh (not forked from one TensorFlow import).")
    return None
  try:
    return template_lib.Template(["impala_tf.preload"], label=FLAGS.logdir)
  except template_lib.TemplateError as e:
    _log(f"Could not start the process the learner and actors are forked "
         f"from ({e}); each starts afresh.")
    return None


def _without_flag(args, name: str) -> list[str]:
  """`args` without `--name=...` / `--name ...` (to give it once, resolved)."""
  kept, skip = [], False
  for arg in args:
    if skip:
      skip = False
    elif arg == f"--{name}":
      skip = True
    elif not arg.startswith(f"--{name}="):
      kept.append(arg)
  return kept


def _mark_failed(message: str):
  """Records in result.json that the run failed, and why."""
  from impala_tf import run_dir  # pylint: disable=g-import-not-at-top
  path = os.path.join(FLAGS.logdir, run_dir.RESULT_FILE)
  record = run_dir.read_json(path) or {}
  record.update(status="failed", error=message)
  run_dir.write_json(path, record)


def _exit_code(outcome) -> int:
  if outcome.signal is not None:
    return 128 + outcome.signal
  return outcome.returncode or 0


def main(argv):
  logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    raise UsageError(f"Unexpected arguments {argv[1:]}; every option is a "
                     "--flag (see --helpfull).")
  # Before TensorFlow is imported (it reads the level once); children
  # inherit it.
  tf_startup.set_log_level(FLAGS.tf_log_level)
  exp, num_actors = _build_experiment()
  _check_pbt_flags()
  if FLAGS.job is not None:
    role = (FLAGS.job, FLAGS.task, FLAGS.learner_address)
  else:
    role = _tf_config_role()
  job = role[0] if role else None
  if job == "actor":
    if not role[2]:
      raise UsageError("An actor needs --learner_address=HOST:PORT (or "
                       "TF_CONFIG).")
    _learner_port(role[2])  # Refuses a malformed address.
    _run_actor_role(exp, role[1], role[2])
    return 0
  # Local, thread or learner mode: a run with a run directory. Everything
  # is checked, and the directory locked, before anything starts.
  capacity = _queue_capacity(exp, num_actors)
  if job == "learner":
    port = FLAGS.port or (_learner_port(role[2]) if role[2] else None)
    if not port:
      raise UsageError("The learner needs --port (or TF_CONFIG's learner "
                       "address).")
  elif FLAGS.logdir is None:
    FLAGS.logdir = os.path.join(
        "runs", f"{FLAGS.suite}-{time.strftime('%Y%m%d-%H%M%S')}")
  lock = None
  if FLAGS.logdir:
    _check_run_directory(FLAGS.logdir)
    _check_resume(exp)
    from impala_tf import run_lock  # pylint: disable=g-import-not-at-top
    try:
      lock = run_lock.RunLock(FLAGS.logdir).acquire(force=FLAGS.force_unlock,
                                                    log=_log)
    except run_lock.RunDirectoryBusyError as e:
      raise UsageError(str(e)) from None
  try:
    if job == "learner":
      _run_learner_role(exp, port, num_actors)
      return 0
    if FLAGS.run_mode == "processes":
      return _run_local(exp, num_actors, sys.argv)
    # Learner and actors share this process: the learner's choice.
    _log(f"Learner and actor threads on {_configure_cpu(exp, 'learner')}.")
    if _LEVELS_NOTE:
      _log(_LEVELS_NOTE)
    from impala_tf import in_process  # pylint: disable=g-import-not-at-top
    stop = threading.Event()
    _stop_on_signals(stop)
    in_process.train_in_process(
        exp, num_actors, queue_capacity=capacity,
        actor_start_below=_actor_start_below(exp), logdir=FLAGS.logdir,
        seed=FLAGS.seed, log_interval_s=FLAGS.log_interval_s,
        checkpoint_interval_s=FLAGS.checkpoint_interval_s, log=_log,
        stop=stop, max_nonfinite_updates=FLAGS.max_nonfinite_updates,
        extra_parts=_extra_parts(exp))
    return 0
  finally:
    if lock is not None:
      lock.release()


def _check_pbt_flags():
  """--pbt_dir and --member come together; the member's run directory
  defaults to DIR/member-<i>."""
  if FLAGS.pbt_dir is None:
    if FLAGS.member is not None:
      raise UsageError("--member needs --pbt_dir (the population's "
                       "directory).")
    return
  if FLAGS.member is None:
    raise UsageError("--pbt_dir needs --member=<index> (this run's place in "
                     "the population).")
  if FLAGS.logdir is None:
    from impala_tf.pbt import store  # pylint: disable=g-import-not-at-top
    FLAGS.logdir = store.member_logdir(FLAGS.pbt_dir, FLAGS.member)


def _learner_port(address: str) -> int:
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  try:
    return server_lib.split_address(address)[1]
  except ValueError as e:
    raise UsageError(f"--learner_address (or TF_CONFIG): {e}") from None


def _check_run_directory(logdir: str):
  """The run directory must be a directory this process can create and
  write; a URL (gs://...) is checked by TF when the learner starts."""
  if "://" in logdir:
    return
  try:
    os.makedirs(logdir, exist_ok=True)
  except FileExistsError:
    raise UsageError(f"--logdir {logdir} is a file, not a directory.") from None
  except OSError as e:
    raise UsageError(f"--logdir {logdir} cannot be created: "
                     f"{e.strerror}.") from None
  probe = os.path.join(logdir, f".write-test-{os.getpid()}")
  try:
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise UsageError(f"--logdir {logdir} is not writable: {e.strerror}.") from None


def _parse_flags(argv):
  """absl's parsing, with a bad flag reported as one line and exit 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"impala_tf.launch: error: {e}", file=sys.stderr)
    sys.exit(2)


def run():
  """Console entry point: bad input is one line on stderr and exit code 2."""
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top

  def guarded(argv):
    try:
      return main(argv)
    except (UsageError, server_lib.LearnerUnreachableError,
            suites.SuiteUnavailableError) as e:
      print(f"impala_tf.launch: error: {e}", file=sys.stderr)
      return 2
    except server_lib.LearnerLostError as e:
      # Not a usage error: a supervisor or cluster manager may restart it.
      print(f"impala_tf.launch: error: {e}", file=sys.stderr)
      return 1
    except errors.RunError as e:
      # The learner's own failures (a broken staging thread, unreadable
      # checkpoints): one line, and a non-zero exit.
      print(f"impala_tf.launch: error: {e}", file=sys.stderr)
      return 1

  app.run(guarded, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
