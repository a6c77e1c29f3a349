"""What the template of a local run imports (`runtime.template`).

TF as the learner and the actors import it (quietly, without Keras 3: see
`tf_startup`), tensorflow-probability, Sonnet, ale-py and the modules both
roles run. The children forked from the template then share these pages
instead of each importing them again. Importing builds nothing: TF's
runtime (its thread pools, which would not survive a fork) starts in each
child, after the child has set its own thread counts.
"""

from impala_tf.runtime import tf_startup

tf_startup.import_tensorflow(without_keras=True)

# pylint: disable=g-import-not-at-top,unused-import,wrong-import-position
import atari57
from impala_tf.acting import actor_loop
from impala_tf.config import experiment
from impala_tf.records import saved_policy
from impala_tf.agent import learner
from impala_tf import learner_loop
from impala_tf.config import presets
from impala_tf.runtime import channels
from impala_tf.runtime import queue
from impala_tf.runtime import server
from impala_tf.runtime import weights
