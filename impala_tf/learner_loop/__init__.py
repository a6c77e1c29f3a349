"""The learner's main loop, made of named parts that features extend.

* `loop.LearnerLoop` takes staged batches (`loop.BatchStager`) and runs
  updates until the frame budget is spent or it is told to stop;
* `base.LoopPart` is what every other piece implements (hooks `start`,
  `after_update`, `tick`, `end`);
* the parts of a run: episode statistics (`episodes.EpisodeStats`, always
  there), the divergence guard (`divergence.DivergenceGuard`), weight
  publishing (`publishing.WeightPublisher`), the run record
  (`recording.RunRecord`: config.json, result.json), checkpointing
  (`checkpointing.Checkpointer`), policy export at the end
  (`exporting.PolicyExporter`), actor health from the launcher's
  supervisor (`actors.ActorHealth`) and progress reporting
  (`progress.ProgressReporter`).

`run_learner` assembles the standard loop on the actors' trajectory queue,
`run_loop` the same loop on any update source (anakin mode's compiled
act-and-learn program); a feature adds a part by passing it in
`extra_parts` instead of editing the loop.
"""

import os
import threading
from typing import Callable, Optional, Sequence

from impala_tf.records import run_dir
from impala_tf.learner_loop import actor_count
from impala_tf.learner_loop import actors
from impala_tf.learner_loop import base
from impala_tf.learner_loop import checkpointing
from impala_tf.learner_loop import divergence
from impala_tf.learner_loop import exporting
from impala_tf.learner_loop import loop as loop_lib
from impala_tf.learner_loop import progress
from impala_tf.learner_loop import publishing
from impala_tf.learner_loop import recording

LoopPart = base.LoopPart
TrainingResult = loop_lib.TrainingResult


def run_learner(experiment, learner, channels, *, queue_capacity: int,
                logdir: Optional[str] = None, log_interval_s: float = 5.0,
                checkpoint_interval_s: float = 600.0,
                stop: Optional[threading.Event] = None,
                log: Callable[[str], None] = print,
                extra_parts: Sequence[base.LoopPart] = (),
                max_nonfinite_updates: int = 5
                ) -> loop_lib.TrainingResult:
  """Trains until `config.total_frames` (or `stop`), then closes the queue.

  Publishes the weights before the first update (version = the update
  count: 0 for a new run) and after every update. With a `logdir` (layout
  in `run_dir.py`): checks and saves config.json and restores the newest
  readable checkpoint first; writes TensorBoard summaries with every
  progress line; saves a checkpoint every `checkpoint_interval_s`; at the
  end saves a last one, exports the policy and writes result.json. Ends
  with the "Done" line. After `max_nonfinite_updates` non-finite updates
  in a row, ends the run with `errors.DivergenceError`.

  Args:
    channels: the `runtime.channels.Channels` the learner hosts.
  """
  # Order matters: the checkpoint is restored before the first weights are
  # published, or actors would start from the untrained ones.
  actor_parts = [publishing.WeightPublisher(channels.weights,
                                            experiment.config.policy_lag),
                 actor_count.ActorCount.for_interval(log_interval_s)]
  if logdir:
    actor_parts.insert(0, actors.ActorHealth(logdir))
  return run_loop(
      experiment, learner,
      loop_lib.QueueSource(channels.queue, queue_capacity),
      actor_parts=actor_parts, logdir=logdir, log_interval_s=log_interval_s,
      checkpoint_interval_s=checkpoint_interval_s, stop=stop, log=log,
      extra_parts=extra_parts, max_nonfinite_updates=max_nonfinite_updates)


def run_loop(experiment, learner, source,
             **options) -> loop_lib.TrainingResult:
  """The standard loop on updates from `source`, `make_loop(experiment,
  learner, source, **options)`, run to its end; ends with the "Done" line.
  See `run_learner`."""
  loop = make_loop(experiment, learner, source, **options)
  result = loop.run()
  loop.log(progress.done_line(result, experiment.config.total_frames))
  return result


def make_loop(experiment, learner, source, *,
              actor_parts: Sequence[base.LoopPart] = (),
              logdir: Optional[str] = None, log_interval_s: float = 5.0,
              checkpoint_interval_s: float = 600.0,
              stop: Optional[threading.Event] = None,
              log: Callable[[str], None] = print,
              extra_parts: Sequence[base.LoopPart] = (),
              max_nonfinite_updates: int = 5) -> loop_lib.LearnerLoop:
  """The standard loop on updates from `source` (`loop.QueueSource`, or
  anakin mode's): the run record, checkpoints and the exported policy
  under `logdir`, the divergence guard, then `actor_parts` (what a run with
  actors adds: weights publishing, actor health and count), progress
  lines and `extra_parts`."""
  parts = []
  if logdir:
    parts.append(recording.RunRecord(logdir))
    parts.append(checkpointing.Checkpointer(
        os.path.join(logdir, run_dir.CHECKPOINT_DIR), checkpoint_interval_s,
        keep_hyperparameters=any(p.owns_hyperparameters
                                 for p in extra_parts)))
    parts.append(exporting.PolicyExporter(
        os.path.join(logdir, run_dir.SAVED_MODEL_DIR)))
  parts.append(divergence.DivergenceGuard(max_nonfinite_updates))
  parts.extend(actor_parts)
  parts.append(progress.ProgressReporter(log_interval_s, logdir))
  parts.extend(extra_parts)
  return loop_lib.LearnerLoop(experiment, learner, source, parts, stop=stop,
                              log=log)
