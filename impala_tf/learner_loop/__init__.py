"""The learner's main loop, made of named parts that features extend.

* `loop.LearnerLoop` takes staged batches (`loop.BatchStager`) and runs
  updates until the frame budget is spent or it is told to stop;
* `base.LoopPart` is what every other piece implements (hooks `start`,
  `after_update`, `tick`, `end`);
* the parts of a run: episode statistics (`episodes.EpisodeStats`, always
  there), weight publishing (`publishing.WeightPublisher`), checkpointing
  (`checkpointing.Checkpointer`) and progress reporting
  (`progress.ProgressReporter`).

`run_learner` assembles the standard loop; a feature adds a part by passing
it in `extra_parts` instead of editing the loop.
"""

import os
import threading
from typing import Callable, Optional, Sequence

from impala_tf.learner_loop import base
from impala_tf.learner_loop import checkpointing
from impala_tf.learner_loop import loop as loop_lib
from impala_tf.learner_loop import progress
from impala_tf.learner_loop import publishing

LoopPart = base.LoopPart
TrainingResult = loop_lib.TrainingResult


def run_learner(experiment, learner, channels, *, queue_capacity: int,
                logdir: Optional[str] = None, log_interval_s: float = 5.0,
                checkpoint_interval_s: float = 600.0,
                stop: Optional[threading.Event] = None,
                log: Callable[[str], None] = print,
                extra_parts: Sequence[base.LoopPart] = ()
                ) -> loop_lib.TrainingResult:
  """Trains until `config.total_frames` (or `stop`), then closes the queue.

  Publishes the weights before the first update (version 0 for a new run)
  and after every update (version = number of updates so far). With a
  `logdir`, restores the newest checkpoint there first, saves one every
  `checkpoint_interval_s` and at the end, and writes TensorBoard summaries
  of every progress line. Ends with the "Done" line.

  Args:
    channels: the `runtime.channels.Channels` the learner hosts.
  """
  parts = [publishing.WeightPublisher(channels.weights)]
  if logdir:
    parts.append(checkpointing.Checkpointer(
        os.path.join(logdir, "checkpoints"), checkpoint_interval_s))
  parts.append(progress.ProgressReporter(queue_capacity, log_interval_s,
                                         logdir))
  parts.extend(extra_parts)
  loop = loop_lib.LearnerLoop(experiment, learner, channels.queue, parts,
                              stop=stop, log=log)
  result = loop.run()
  log(progress.done_line(result))
  return result
