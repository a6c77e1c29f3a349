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

Every hyperparameter of the preset (impala_tf/config/presets.py) is also a flag of
the same name; unset flags keep the preset's value.

This module is the flags and `main`: the flags are resolved into a run
plan (`impala_tf.config.plan`), which a role runs (`impala_tf.roles`).
"""

import sys

from absl import flags
from absl import logging

from impala_tf import launch_flags
from impala_tf.config import plan as plan_lib
from impala_tf.runtime import tf_startup

FLAGS = flags.FLAGS

launch_flags.define_flags(FLAGS)


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


def run():
  """Console entry point: bad input is one line on stderr and exit code 2;
  a run that cannot go on, one line and exit code 1."""
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import server as server_lib  # pylint: disable=g-import-not-at-top
  # A lost learner is not a usage error: a supervisor or cluster manager
  # may restart the actor.
  cli.run("launch", main, usage_errors=(server_lib.LearnerUnreachableError,),
          failures=(server_lib.LearnerLostError,))


if __name__ == "__main__":
  run()
