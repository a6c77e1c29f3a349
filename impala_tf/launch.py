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

This module is the flags and `main`: the flags are resolved into a run
plan (`impala_tf.plan`), which a role runs (`impala_tf.roles`).
"""

import dataclasses
import functools
import sys
import types

from absl import app
from absl import flags
from absl import logging

from impala_tf import errors
from impala_tf import plan as plan_lib
from impala_tf import tf_startup

FLAGS = flags.FLAGS

# One flag per hyperparameter of presets.Config; None keeps the preset value.
_CONFIG_FLAG_HELP = "Preset override (see impala_tf/presets.py)."


def define_flags(flag_values: flags.FlagValues = FLAGS) -> flags.FlagValues:
  """Defines the launcher's flags on `flag_values` (absl's global FLAGS
  when this module is imported; a fresh `flags.FlagValues()` parses a
  command line without touching them). Returns `flag_values`."""
  define = types.SimpleNamespace(**{
      kind: functools.partial(getattr(flags, f"DEFINE_{kind}"),
                              flag_values=flag_values)
      for kind in ("string", "list", "bool", "integer", "float", "enum")})
  define.string("suite", "atari57", "Environment suite: atari57, dmlab30, "
                "catch, or one another package registers "
                "(impala_tf.suites).")
  define.list("levels", [], "Games (Atari) or levels (DMLab-30); default "
              "the suite's (Pong for Atari, all 30 levels for DMLab-30).")
  define.bool("skip_unavailable_levels", False, "Train on the levels "
              "this machine can play and leave out those it cannot (a "
              "DeepMind Lab build without a level's map or the psychlab "
              "image set); without it such a run is refused with the "
              "levels and why.")
  define.string("preset", None, "Hyperparameter preset (atari, "
                "dmlab_single_task, dmlab30, catch); default by suite.")
  define.integer("num_actors", None, "Actor processes (or threads); "
                 "default: one per CPU core, or more where a run's "
                 "levels need them (a suite that gives each actor one "
                 "level, as Atari does).", lower_bound=1)
  define.integer("envs_per_actor", None, "Environments each actor steps "
                 "in lockstep; default by suite (16 for Atari, 4 for "
                 "DMLab, 8 for catch), or more where the run's levels "
                 "need them: every level gets an environment.",
                 lower_bound=1)
  define.integer("actor_threads", 1, "TF threads in each actor process "
                 "(intra- and inter-op). One costs the least CPU per "
                 "frame when the actors, the learner and the "
                 "environments share a few cores; 0 lets TF decide.",
                 lower_bound=0)
  define.integer("queue_capacity", None, "Trajectories the learner's "
                 "queue holds; default max(2 x batch, one unroll of "
                 "every actor).", lower_bound=1)
  define.integer("actor_start_below", None, "Actors start an unroll "
                 "only while fewer trajectories than this are queued, so "
                 "a learner-bound run's queue adds little policy lag; "
                 "default one batch less one actor's unroll (at least "
                 "1), 0: actors never wait before an unroll (only for "
                 "room to enqueue it).", lower_bound=0)
  define.string("logdir", None, "Checkpoints, TensorBoard summaries and "
                "result.json; an existing run there is resumed. Default "
                "runs/<suite>-<time>.")
  define.integer("seed", 0, "Seeds environments and action sampling.",
                 lower_bound=0)
  define.float("log_interval_s", 5.0, "Seconds between progress lines.",
               lower_bound=0.1)
  define.bool("force_unlock", False, "Take the run directory\'s lock even "
              "if another host holds it (when that run is known to be "
              "gone).")
  define.enum("onednn", "auto", ["auto", "on", "off"], "TensorFlow's "
              "oneDNN CPU kernels, decided per process before TF starts "
              "(TF leaves them off on CPUs without AVX-512 VNNI/BF16 or "
              "AMX): auto = the rule of impala_tf/cpu.py, measured per "
              "role (today on everywhere). A TF_ENABLE_ONEDNN_OPTS you "
              "set wins.")
  define.integer("tf_log_level", None, "TensorFlow's C++ log level in "
                 "every process (TF_CPP_MIN_LOG_LEVEL: 0 all, 1 no INFO, "
                 "2 no WARNING, 3 no ERROR either). Default: "
                 "TF_CPP_MIN_LOG_LEVEL if set, else 3, which hides TF's "
                 "start-up lines (oneDNN notices, CUDA probing).",
                 lower_bound=0, upper_bound=3)
  define.integer("max_nonfinite_updates", 5, "The run stops, as "
                 "diverged, after this many updates in a row with a "
                 "non-finite loss or gradient (none is ever applied).",
                 lower_bound=1)
  define.float("checkpoint_interval_s", 600.0, "Seconds between "
               "checkpoints (one is also written at the end).",
               lower_bound=1.0)
  define.enum("run_mode", "processes", ["processes", "threads"],
              "Local mode: actors as processes or as threads.")
  define.enum("isolation", "auto", ["auto", "off"], "Local process mode: "
              "run in a private network namespace when possible.")
  define.bool("fork_children", True, "Local process mode: fork the "
              "learner and actors from one process that imported "
              "TensorFlow once, so they share its memory (about 180 "
              "MiB per process), instead of starting each afresh.")
  define.enum("job", None, ["learner", "actor"], "Cluster mode: the role "
              "of this process (default: TF_CONFIG, else local mode).")
  define.integer("task", 0, "Cluster mode: the actor index.",
                 lower_bound=0)
  define.integer("port", None, "Cluster mode, learner: the TF server "
                 "port.", lower_bound=1, upper_bound=65535)
  define.string("learner_address", None, "Cluster mode, actor: the "
                "learner's HOST:PORT.")
  define.float("connect_timeout_s", 120.0, "Actor: how long to keep "
               "trying to reach the learner.")
  define.float("learner_wait_s", 600.0, "Cluster mode, actor: when the "
               "learner goes away (crashed, killed, restarting), wait "
               "this long for it to come back at the same address, "
               "then reconnect and go on, in the same process (same "
               "pid). 0: exit with code 1 at once instead, for a "
               "supervisor that restarts actors.", lower_bound=0.0)
  define.string("pbt_dir", None, "Population-based training (App. F): "
                "this run is member --member of the population in this "
                "directory (a local path, NFS or gs://); --logdir "
                "defaults to DIR/member-<i>. See impala_tf/pbt.")
  define.integer("member", None, "With --pbt_dir: this member's index.",
                 lower_bound=0)
  define.integer("pbt_burn_in_frames", 20_000_000, "PBT: a member's own "
                 "frames before it first exploits or explores (App. F: "
                 "20M).", lower_bound=0)
  define.integer("pbt_ready_episodes", 5_000, "PBT: new episode returns "
                 "a member collects between ready steps (App. F: 5,000).",
                 lower_bound=1)
  define.float("pbt_exploit_threshold", 5.0, "PBT: copy the member drawn "
               "if its fitness is higher by more than this (App. F: 5 "
               "points of the capped normalised score, in percent; in "
               "return units for a single level).")
  define.enum("pbt_initial", "table_d1", ["table_d1", "config"], "PBT: a "
              "new member draws its learning rate, entropy cost and "
              "RMSProp epsilon from Table D.1's ranges (table_d1), or "
              "starts from the preset and flags (config).")

  _define_config_flags(define)
  _define_suite_option_flags(define)
  return flag_values


def _define_config_flags(define):
  from impala_tf import presets  # pylint: disable=g-import-not-at-top
  for field in dataclasses.fields(presets.Config):
    kind = field.type
    text = presets.FIELD_HELP.get(field.name, "") + " " + _CONFIG_FLAG_HELP
    if kind is bool:
      define.bool(field.name, None, text)
    elif kind is int:
      define.integer(field.name, None, text)
    elif kind is float:
      define.float(field.name, None, text)
    elif kind is str:
      define.string(field.name, None, text)
    elif kind in plan_lib.NUMBER_OR_NONE_TYPES:
      define.string(field.name, None, text + " A number, or 'none'.")
    else:
      raise TypeError(f"No flag type for Config.{field.name}: {kind}")


def _define_suite_option_flags(define):
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  kinds = {bool: define.bool, int: define.integer, float: define.float,
           str: define.string}
  for option in suites.all_options().values():
    kinds[option.kind](option.flag, None, option.help)


define_flags()


def plan_from_argv(argv, environ=None) -> plan_lib.RunPlan:
  """The plan of command line `argv` (`argv[0]` is the program), parsed
  with fresh flags: what `main` resolves, for tools and tests."""
  flag_values = define_flags(flags.FlagValues())
  try:
    flag_values(list(argv))
  except flags.Error as e:
    raise plan_lib.PlanError(str(e)) from None
  return plan_lib.resolve(flag_values.flag_values_dict(), environ)


def main(argv):
  logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    raise plan_lib.PlanError(f"Unexpected arguments {argv[1:]}; every option "
                             "is a --flag (see --helpfull).")
  # Before TensorFlow is imported (it reads the level once); children
  # inherit it.
  tf_startup.set_log_level(FLAGS.tf_log_level)
  plan = plan_lib.resolve(FLAGS.flag_values_dict())
  from impala_tf import roles  # pylint: disable=g-import-not-at-top
  return roles.run(plan, sys.argv)


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
    except (plan_lib.PlanError, server_lib.LearnerUnreachableError,
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
