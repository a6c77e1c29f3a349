"""The exported policy: a SavedModel that needs nothing of this project.

`export_policy` writes one from a network's variables (every run does at
its end, `learner_loop.exporting`); `export_run` from a run directory's
newest checkpoint (`python -m impala_tf.export`). It follows the
conventions of TF-Agents' `PolicySaver`:

  get_initial_state(batch_size)  -> the recurrent state at an episode start
      (`core_state_c`, `core_state_h` float32 [B, 256] for an LSTM policy;
      empty for a feed-forward one)
  action(<observation fields>, prev_action, prev_reward, step_type,
         [core_state_c, core_state_h,] greedy)
      -> action int32 [B], policy_logits float32 [B, A], baseline float32
         [B] (and the new core_state_c, core_state_h)
  get_metadata() -> suite, levels, action set, observation spec, frames
      trained, precision, the run's config (JSON); the same values are in
      `assets.extra/impala_tf.json`
  serving_default = action

Inputs of `action`: each observation field by name with a leading batch
dimension (Atari: `frame` uint8 [B, 84, 84, 4], the last 4 frames oldest
first; DMLab: `frame` uint8 [B, 72, 96, 3] and `instruction` int32 [B, 16]),
`prev_action` int32 [B] and `prev_reward` float32 [B] (the action taken and
the raw reward received just before this observation; 0 at an episode
start), `step_type` int32 [B] (0 = FIRST, an episode starts here and the
state is reset; 1 = MID; 2 = LAST, as in dm_env and TF-Agents) and `greedy`
bool [] (True: the most likely action; False: sampled from the policy).
"""

import inspect
import json
import os
from typing import Optional

import tensorflow as tf

from impala_tf.agent import networks
from impala_tf.records import run_dir
from impala_tf.runtime import weights as weights_runtime

FORMAT_VERSION = 1
STEP_TYPE_FIRST = 0
METADATA_FILE = run_dir.POLICY_METADATA_FILE


class ExportedPolicy(tf.Module):
  """The policy module a SavedModel holds (see the module docstring)."""

  def __init__(self, network: networks.ImpalaNetwork, description: dict,
               num_frames: int):
    super().__init__(name="impala_policy")
    self.network = network
    self._observation_names = sorted(description["observation_spec"])
    self._metadata = {
        "suite": description["suite"],
        "levels": description["levels"],
        "num_actions": description["num_actions"],
        "action_names": description["action_names"],
        "observation_spec": json.dumps(description["observation_spec"],
                                       sort_keys=True),
        "frame_stack": description["frame_stack"],
        "frames_trained": num_frames,
        "precision": network.precision,  # The torso's compute dtype.
        "config": json.dumps(description, sort_keys=True),
        "format_version": FORMAT_VERSION,
    }
    batch = tf.TensorSpec([], tf.int32, name="batch_size")
    self.get_initial_state = tf.function(self._initial_state,
                                         input_signature=[batch])
    self.get_metadata = tf.function(self._get_metadata, input_signature=[])
    self.action = tf.function(_with_keywords(self._action,
                                             self.action_specs()),
                              input_signature=list(
                                  self.action_specs().values()))

  def action_specs(self) -> dict[str, tf.TensorSpec]:
    """The inputs of `action`, in order."""
    specs = {}
    for name in self._observation_names:
      shape, dtype = json.loads(self._metadata["observation_spec"])[name]
      specs[name] = tf.TensorSpec([None, *shape], tf.as_dtype(dtype), name)
    specs["prev_action"] = tf.TensorSpec([None], tf.int32, "prev_action")
    specs["prev_reward"] = tf.TensorSpec([None], tf.float32, "prev_reward")
    specs["step_type"] = tf.TensorSpec([None], tf.int32, "step_type")
    if self.network.use_lstm:
      for name in ("core_state_c", "core_state_h"):
        specs[name] = tf.TensorSpec([None, networks.CORE_SIZE], tf.float32,
                                    name)
    specs["greedy"] = tf.TensorSpec([], tf.bool, "greedy")
    return specs

  def _initial_state(self, batch_size):
    if not self.network.use_lstm:
      return {}
    state = self.network.initial_state(batch_size)
    return {"core_state_c": state.cell, "core_state_h": state.hidden}

  def metadata(self) -> dict:
    """What `get_metadata` returns, as plain values."""
    return dict(self._metadata)

  def _get_metadata(self):
    return {name: tf.constant(value)
            for name, value in self._metadata.items()}

  def _action(self, **inputs):
    observation = {name: inputs[name] for name in self._observation_names}
    agent_input = networks.AgentInput(
        prev_action=inputs["prev_action"], reward=inputs["prev_reward"],
        done=tf.equal(inputs["step_type"], STEP_TYPE_FIRST),
        observation=observation)
    state = ()
    if self.network.use_lstm:
      import sonnet as snt  # pylint: disable=g-import-not-at-top
      state = snt.LSTMState(hidden=inputs["core_state_h"],
                            cell=inputs["core_state_c"])
    outputs, new_state = self.network(agent_input, state)
    logits = outputs.policy_logits
    sampled = tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0]
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    result = {"action": tf.where(inputs["greedy"], greedy, sampled),
              "policy_logits": logits, "baseline": outputs.baseline}
    if self.network.use_lstm:
      result.update(core_state_c=new_state.cell,
                    core_state_h=new_state.hidden)
    return result


def _with_keywords(fn, specs):
  """`fn(**inputs)` as a function whose parameters are named after `specs`
  (a SavedModel signature names its inputs after the parameters)."""

  def call(*args):
    return fn(**dict(zip(specs, args)))

  call.__signature__ = inspect.Signature([
      inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
      for name in specs])
  call.__name__ = "action"
  return call


def export_policy(experiment, variables, num_frames: int,
                  output_dir: str) -> str:
  """Writes the policy with weights `variables` (the learner's trainable
  variables, in `network.trainable_variables` order) to `output_dir`.

  The network is rebuilt outside any distribution strategy and the weights
  copied in, so the SavedModel holds plain variables.
  """
  network = experiment.make_network()
  network(networks.dummy_input(experiment.observation_spec),
          network.initial_state(1))
  weights_runtime.unflatten_into(network.trainable_variables,
                                 weights_runtime.flatten(variables))
  policy = ExportedPolicy(network, run_dir.describe(experiment), num_frames)
  signatures = {"action": policy.action, "serving_default": policy.action,
                "get_initial_state": policy.get_initial_state,
                "get_metadata": policy.get_metadata}
  # Written next to the target and renamed, so a reader never sees half a
  # policy, and an older export stays until the new one is complete.
  temporary = output_dir.rstrip("/") + f".tmp-{os.getpid()}"
  if tf.io.gfile.exists(temporary):
    tf.io.gfile.rmtree(temporary)
  tf.saved_model.save(policy, temporary, signatures=signatures)
  # The metadata also as a plain file (SavedModel's place for such files),
  # readable without TF: `evaluate` picks its CPU kernels before TF starts.
  tf.io.gfile.makedirs(os.path.join(temporary, "assets.extra"))
  with tf.io.gfile.GFile(os.path.join(temporary, METADATA_FILE), "w") as f:
    json.dump(policy.metadata(), f, indent=2, sort_keys=True)
  if tf.io.gfile.exists(output_dir):
    tf.io.gfile.rmtree(output_dir)
  tf.io.gfile.rename(temporary, output_dir)
  return output_dir


def export_run(logdir: str, output_dir: Optional[str] = None,
               log=print) -> str:
  """Exports the newest readable checkpoint of the run in `logdir`."""
  from impala_tf.learner_loop import checkpointing  # pylint: disable=g-import-not-at-top
  experiment = run_dir.load_experiment(logdir)
  network = experiment.make_network()
  network(networks.dummy_input(experiment.observation_spec),
          network.initial_state(1))
  num_frames = tf.Variable(0, dtype=tf.int64)
  path = checkpointing.restore_newest(
      tf.train.Checkpoint(network=network, num_frames=num_frames),
      os.path.join(logdir, run_dir.CHECKPOINT_DIR), log=log, partial=True)
  if path is None:
    raise FileNotFoundError(f"{logdir} has no checkpoint to export.")
  output_dir = output_dir or os.path.join(logdir, run_dir.SAVED_MODEL_DIR)
  export_policy(experiment, network.trainable_variables,
                int(num_frames.numpy()), output_dir)
  log(f"Exported {path} ({int(num_frames.numpy()):,} frames) to "
      f"{output_dir}.")
  return output_dir
