"""The learner and actor processes start TF without Keras 3 (60 MB each,
unused): everything they do still works."""

import subprocess
import sys

_WITHOUT_KERAS = r"""
import sys
from impala_tf.runtime import tf_startup
tf = tf_startup.import_tensorflow(without_keras=True)
assert "keras" not in sys.modules, "Keras 3 was loaded"
from impala_tf.config import experiment
from impala_tf.config import presets
from impala_tf.agent import learner as learner_lib
from impala_tf.records import saved_policy
from impala_tf.agent import trajectory
from impala_tf.testing import trajectories
exp = experiment.build("catch", config=presets.CATCH.replace(
    batch_size=4, unroll_length=5), envs_per_actor=2)
learner = learner_lib.Learner(exp.config, exp.make_network,
                              exp.observation_spec)
batch = trajectories.random_batch(exp.trajectory_specs(), exp.num_actions, 4)
loss = float(learner.update(batch)["total_loss"].numpy())  # Uses tfp.
out = saved_policy.export_policy(exp, learner.variables, 40, sys.argv[1])
policy = tf.saved_model.load(out)
state = policy.signatures["get_initial_state"](batch_size=tf.constant(1))
assert "keras" not in sys.modules, "Keras 3 was loaded on the way"
try:
  import keras
except ImportError as e:
  print("refused:", e)
print("ok", loss, sorted(state))
"""


def test_tf_starts_and_trains_and_exports_without_keras(tmp_path):
  done = subprocess.run([sys.executable, "-c", _WITHOUT_KERAS,
                         str(tmp_path / "policy")], capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "refused: keras is not loaded in impala_tf's learner and actor" in (
      done.stdout)
  assert "\nok " in "\n" + done.stdout
