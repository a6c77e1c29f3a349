r"""Scores an exported policy with its suite's evaluation protocol.

  python -m impala_tf.evaluate --policy=DIR [--levels=...] [--episodes=N]
  python -m impala_tf.evaluate --logdir=RUN      # the run's saved_model

Plays `--episodes` evaluation episodes per level (default the suite's
protocol: 200 on Atari, 500 on DMLab-30), batched over `--num_envs`
environments, with the suite's protocol (Atari: whole games after 1 to 30
no-op steps, capped at 108,000 frames; DMLab-30: the `_test` levels with the
fixed evaluation mixer seed; Catch: plain episodes), then prints each
level's mean, spread and human-normalised score (percent, 100 = human) and
the suite's scores, and writes them to `eval.json` and `eval.csv` next to
the policy (in the directory that holds it) or in `--output`.

The suite and levels default to the policy's metadata; other levels of the
same suite may be given (with the same number of actions). The policy is a
SavedModel of `impala_tf.export`, driven through its signatures only
(`impala_tf/records/evaluation.py`).
"""

import json
import os

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def _define_flags():
  """The command line's flags (defined only when run as a program, so
  importing this module defines none)."""
  flags.DEFINE_string("policy", None, "An exported policy (SavedModel).")
  flags.DEFINE_string("logdir", None, "A run directory: evaluates its "
                      "saved_model.")
  flags.DEFINE_list("levels", [], "Levels to evaluate; default the policy's.")
  flags.DEFINE_integer("episodes", None, "Episodes per level; default the "
                       "suite's protocol (200 in the paper's Atari one, 500 "
                       "in its DMLab-30 one).", lower_bound=1)
  flags.DEFINE_integer("num_envs", 8, "Environments played in lockstep.",
                       lower_bound=1)
  flags.DEFINE_integer("seed", 0, "Seeds the environments and no-op starts.")
  flags.DEFINE_bool("greedy", False, "Take the most likely action instead of "
                    "sampling from the policy.")
  flags.DEFINE_string("output", None, "Directory for eval.json and eval.csv; "
                      "default the directory that holds the policy.")
  flags.DEFINE_integer("video", 0, "Record the first N episodes of each "
                       "level as MP4 files (Atari in the emulator's full "
                       "colour, DMLab and Gymnasium from their RGB frames); "
                       "needs the video extra: pip install "
                       "'impala_tf[video]'.", lower_bound=0)
  flags.DEFINE_string("video_dir", None, "Where the videos go; default "
                      "videos/ beside eval.json.")
  flags.DEFINE_enum("onednn", "auto", ["auto", "on", "off"], "TensorFlow's "
                    "oneDNN CPU kernels; auto as for an actor of the "
                    "policy's network (impala_tf/runtime/cpu.py).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}.")
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  tf_startup.set_log_level()
  if bool(FLAGS.policy) == bool(FLAGS.logdir):
    raise app.UsageError("Give exactly one of --policy=DIR or --logdir=RUN.")
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  path = FLAGS.policy or os.path.join(FLAGS.logdir, run_dir.SAVED_MODEL_DIR)
  if not os.path.isdir(path) and "://" not in path:
    raise app.UsageError(f"No exported policy at {path} (make one with "
                         "python -m impala_tf.export --logdir=RUN).")
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  torso = run_dir.read_json(os.path.join(path, run_dir.POLICY_METADATA_FILE))
  torso = json.loads(torso["config"])["config"]["torso"] if torso else "deep"
  cpu.configure_onednn(FLAGS.onednn, "actor", torso)
  from impala_tf.records import evaluation  # pylint: disable=g-import-not-at-top
  from impala_tf.records import video  # pylint: disable=g-import-not-at-top
  output = FLAGS.output or os.path.dirname(os.path.abspath(path))
  if FLAGS.video:
    video.check_encoder()  # Before anything is played.
  policy = evaluation.Policy(path)
  try:
    report = evaluation.evaluate(
        policy, FLAGS.levels or None, episodes=FLAGS.episodes,
        num_envs=FLAGS.num_envs, seed=FLAGS.seed, greedy=FLAGS.greedy,
        video=FLAGS.video,
        video_dir=FLAGS.video_dir or os.path.join(output, "videos"))
  except ValueError as e:  # evaluation.EvaluationError among them.
    raise app.UsageError(str(e)) from None
  json_path, csv_path = evaluation.write_report(report, output)
  print(f"Wrote {json_path} and {csv_path}.")


if __name__ == "__main__":
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  from impala_tf.records import video as _video  # pylint: disable=g-import-not-at-top
  cli.run("evaluate", main, define_flags=_define_flags,
          usage_errors=(_video.VideoUnavailableError,))
