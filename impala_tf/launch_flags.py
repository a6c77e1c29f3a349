"""The launcher's flags (`python -m impala_tf.launch`), as a schema any
tool can parse a launch command line with.

`define_flags(flag_values)` defines them on a `flags.FlagValues` (the
launcher: absl's global FLAGS); `plan_from_argv(argv)` parses a launch
command line with fresh flags and resolves its `plan.RunPlan`, which the
tools that start runs (ablate, pbt) use to check their runs' flags before
starting any. No TensorFlow.
"""

import dataclasses
import functools
import types

from absl import flags

from impala_tf.config import plan as plan_lib

# One flag per hyperparameter of presets.Config; None keeps the preset value.
_CONFIG_FLAG_HELP = "Preset override (see impala_tf/config/presets.py)."


def define_flags(flag_values: flags.FlagValues) -> flags.FlagValues:
  """Defines the launcher's flags on `flag_values` (the launcher's: absl's
  global FLAGS; a fresh `flags.FlagValues()` parses a command line without
  touching them). Returns `flag_values`."""
  define = types.SimpleNamespace(**{
      kind: functools.partial(getattr(flags, f"DEFINE_{kind}"),
                              flag_values=flag_values)
      for kind in ("string", "list", "bool", "integer", "float", "enum")})
  _define_run_flags(define)
  _define_process_flags(define)
  _define_pbt_flags(define)
  _define_config_flags(define)
  _define_suite_option_flags(define)
  return flag_values


def _define_run_flags(define):
  """What is trained, by how many actors, and where the run lives."""
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
                "atari_fast, atari_multitask, dmlab_single_task, dmlab30, "
                "catch, ...: impala_tf/config/presets.py); default by "
                "suite.")
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
  define.integer("seed", 0, "Seeds the network's first weights, the "
                 "environments and action sampling.",
                 lower_bound=0)
  define.float("log_interval_s", 5.0, "Seconds between progress lines.",
               lower_bound=0.1)
  define.bool("force_unlock", False, "Take the run directory\'s lock even "
              "if another host holds it (when that run is known to be "
              "gone).")


def _define_process_flags(define):
  """How the run's processes start, run and reach each other."""
  define.enum("onednn", "auto", ["auto", "on", "off"], "TensorFlow's "
              "oneDNN CPU kernels, decided per process before TF starts "
              "(TF leaves them off on CPUs without AVX-512 VNNI/BF16 or "
              "AMX): auto = the rule of impala_tf/runtime/cpu.py, measured per "
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
  define.enum("run_mode", "processes", ["processes", "threads", "anakin"],
              "Local mode: actors as processes or as threads; anakin: "
              "no actors, the environments written in TensorFlow are "
              "stepped inside the learner's compiled program "
              "(impala_tf/anakin; catch and CartPole-v1).")
  define.integer("anakin_replicas", 0, "Anakin mode: replicas the batch "
                 "is split over, gradients all-reduced (0: every GPU, "
                 "else the CPU as one device; N > 1 on a CPU splits it "
                 "into N logical devices).", lower_bound=0)
  define.integer("anakin_iterations", plan_lib.AnakinOptions.iterations,
                 "Anakin mode: unrolls and updates per call of the "
                 "compiled program (progress, checkpoints and stopping "
                 "happen between calls; measured: docs/benchmarks.md).",
                 lower_bound=1)
  define.bool("anakin_xla", True, "Anakin mode: compile each replica's "
              "unroll (environments and policy) and the loss gradient "
              "with XLA (measured: docs/benchmarks.md).")
  define.enum("inference", "actor", ["actor", "central"], "Where the "
              "policy acts: in every actor on its own copy (actor, the "
              "paper's), or in one server on the learner's host that "
              "batches the steps of every actor's environments, on the "
              "accelerator when there is one (central; impala_tf/"
              "inference, docs/architecture.md).")
  define.integer("inference_batch", 0, "Central inference: most "
                 "environments in one batch (0: every actor's).",
                 lower_bound=0)
  define.float("inference_wait_ms", 0.0, "Central inference: how long a "
               "batch waits for more requests after its first (0: it takes "
               "what has arrived; measured: docs/benchmarks.md).",
               lower_bound=0.0)
  define.integer("inference_groups", 2, "Central inference: groups an "
                 "actor's environments are split into; one steps while "
                 "another waits for its actions (a divisor of "
                 "--envs_per_actor).", lower_bound=1)
  define.enum("inference_server", "process", ["process", "learner"],
              "Central inference: the server runs in a process of its own "
              "next to the learner (process: its own CPU threads, the "
              "choice on a CPU-only machine: docs/benchmarks.md), or as a "
              "thread of the learner process (learner: on the learner's "
              "accelerator, sharing its weights' host).")
  define.string("inference_device", "", "Central inference: the device "
                "the policy runs on (default: TensorFlow's choice, the "
                "first GPU if there is one, else the CPU).")
  define.integer("inference_port", None, "Central inference: the "
                 "server's port on the learner's host (default the "
                 "learner's TF server port + 1; local mode picks a free "
                 "one).", lower_bound=1, upper_bound=65535)
  define.enum("isolation", "auto", ["auto", "off"], "Local process mode: "
              "run in a private network namespace when possible.")
  define.bool("fork_children", True, "Local process mode: fork the "
              "learner and actors from one process that imported "
              "TensorFlow once, so they share its memory (about 180 "
              "MiB per process), instead of starting each afresh.")
  define.enum("job", None, ["learner", "actor", "inference"], "Cluster "
              "mode: the role of this process (default: TF_CONFIG, else "
              "local mode); inference: the central inference server's "
              "process, on the learner's host (--inference_server=process).")
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


def _define_pbt_flags(define):
  """Population-based training (App. F)."""
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
  define.bool("pbt_anneal", False, "PBT: anneal a member's learning rate "
              "linearly to 0 at --total_frames, as a plain run does (Table "
              "G.1). Default: not annealed; only exploit and explore change "
              "it [paper Fig. F.1, our reading; impala_tf/pbt/rules.py].")


def _define_config_flags(define):
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
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


def plan_from_argv(argv, environ=None) -> plan_lib.RunPlan:
  """The plan of command line `argv` (`argv[0]` is the program), parsed
  with fresh flags: what `main` resolves, for tools and tests."""
  flag_values = define_flags(flags.FlagValues())
  try:
    flag_values(list(argv))
  except flags.Error as e:
    raise plan_lib.PlanError(str(e)) from None
  return plan_lib.resolve(flag_values.flag_values_dict(), environ)


def refuse_set_flags(args, names, setter: str) -> None:
  """Refuses, in one line, launch flags among `args` that `setter` (a
  tool that starts runs) sets for every run itself."""
  for name in names:
    given = [a for a in args if a == name or a.startswith(name + "=")]
    if given:
      raise plan_lib.PlanError(f"{given[0]} is set per run by {setter}; "
                               "drop it.")
