"""An exported policy run where this project cannot be imported, next to
the live network it came from: the SavedModel must stand on TensorFlow
alone (`records.saved_policy`)."""

import subprocess
import sys

import numpy as np
import tensorflow as tf

from impala_tf.agent import networks

# Runs in a fresh interpreter: imports of this project fail there, so the
# SavedModel must stand on TensorFlow alone.
LOAD_AND_RUN = r"""
import importlib.abc, json, sys
class _Blocked(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("impala_tf", "atari57", "dmlab30"):
      raise ImportError(f"{name} is blocked in this test")
    return None
sys.meta_path.insert(0, _Blocked())
import numpy as np
import tensorflow as tf

policy_dir, inputs_path, outputs_path = sys.argv[1:]
loaded = tf.saved_model.load(policy_dir)
action = loaded.signatures["action"]
steps = np.load(inputs_path)
num_steps = int(steps["num_steps"])
batch = int(steps["batch"])
state = loaded.signatures["get_initial_state"](batch_size=tf.constant(batch))
state = {k: v for k, v in state.items() if k.startswith("core_state")}
outputs = {}
for t in range(num_steps):
  inputs = {k[len(f"{t}/"):]: tf.constant(v) for k, v in steps.items()
            if k.startswith(f"{t}/")}
  out = action(greedy=tf.constant(True), **inputs, **state)
  state = {k: out[k] for k in state}
  for k, v in out.items():
    outputs[f"{t}/{k}"] = v.numpy()
meta = {k: v.numpy() for k, v in loaded.signatures["get_metadata"]().items()}
outputs["suite"] = np.array(meta["suite"].decode())
outputs["frames_trained"] = meta["frames_trained"]
outputs["precision"] = np.array(meta["precision"].decode())
assert not any(m.split(".")[0] in ("impala_tf", "atari57", "dmlab30")
               for m in sys.modules), "this project was imported"
np.savez(outputs_path, **outputs)
"""


def live_outputs(network, exp, steps, batch):
  """The network's outputs for `steps` (dicts of observation fields,
  prev_action, prev_reward, step_type, each `[batch, ...]`), as the
  exported `action` signature gives them."""
  state = network.initial_state(batch)
  outputs = []
  for step in steps:
    agent_input = networks.AgentInput(
        prev_action=tf.constant(step["prev_action"]),
        reward=tf.constant(step["prev_reward"]),
        done=tf.constant(step["step_type"] == 0),
        observation={name: tf.constant(step[name])
                     for name in exp.observation_spec})
    out, state = network(agent_input, state)
    record = {"policy_logits": out.policy_logits.numpy(),
              "baseline": out.baseline.numpy()}
    if network.use_lstm:
      record.update(core_state_c=state.cell.numpy(),
                    core_state_h=state.hidden.numpy())
    outputs.append(record)
  return outputs


def run_without_project(tmp_path, directory, steps, batch):
  """The exported policy in `directory` on `steps`, in a fresh interpreter
  that cannot import this project: {"<t>/<output>": value, ...} and its
  metadata."""
  inputs = {f"{t}/{k}": v for t, step in enumerate(steps)
            for k, v in step.items()}
  np.savez(tmp_path / "inputs.npz", num_steps=len(steps), batch=batch,
           **inputs)
  result = subprocess.run(
      [sys.executable, "-c", LOAD_AND_RUN, directory,
       str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
      cwd=tmp_path, capture_output=True, text=True, timeout=300,
      env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
  assert result.returncode == 0, result.stderr[-3000:]
  return dict(np.load(tmp_path / "outputs.npz"))


def check_run(logdir: str, steps: int, workdir) -> dict:
  """Plays `steps` greedy steps of the run's first level (its test
  version, with the evaluation mixer seed, for DMLab) with the run's
  exported policy loaded as `evaluate` loads it, then feeds the same
  observations to the policy loaded where this project cannot be imported.
  Returns {"steps", "level", "same_actions", "max_logit_difference",
  "instruction_words", "frames_trained"}."""
  import os  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  from impala_tf.records import evaluation  # pylint: disable=g-import-not-at-top
  policy_dir = os.path.join(logdir, "saved_model")
  policy = evaluation.Policy(policy_dir)
  meta = policy.metadata
  suite = suites.get(meta["suite"])
  level = meta["levels"][0]
  env = suite.make_eval_env(level, 1, 0, {})
  out = env.reset()
  state = policy.initial_state(1)
  prev_action = np.zeros(1, np.int32)
  recorded, actions = [], []
  for _ in range(steps):
    step_type = np.where(out.done, 0, 1).astype(np.int32)
    recorded.append(dict(
        {name: np.asarray(out.observation[name])
         for name in meta["config"]["observation_spec"]},
        prev_action=prev_action.copy(),
        prev_reward=np.asarray(out.reward, np.float32),
        step_type=step_type))
    prev_action, state = policy.step(out.observation, prev_action,
                                     out.reward, step_type, state, True)
    actions.append(int(prev_action[0]))
    out = env.step(prev_action)
  env.close()
  saved = run_without_project(pathlib.Path(workdir), policy_dir, recorded, 1)
  alone = [int(saved[f"{t}/action"][0]) for t in range(steps)]
  words = sum(int((step.get("instruction", np.zeros(1)) > 0).sum())
              for step in recorded)
  return {"steps": steps, "level": level,
          "same_actions": sum(a == b for a, b in zip(actions, alone)),
          "instruction_words": words,
          "frames_trained": int(saved["frames_trained"])}


def main(argv):
  """`python -m impala_tf.testing.standalone_policy RUN_DIR [STEPS]`."""
  import tempfile  # pylint: disable=g-import-not-at-top
  logdir = argv[1]
  steps = int(argv[2]) if len(argv) > 2 else 200
  with tempfile.TemporaryDirectory() as workdir:
    result = check_run(logdir, steps, workdir)
  print(f"{result['level']}: {result['same_actions']} of {result['steps']} "
        f"greedy actions the same with the policy loaded where impala_tf "
        f"cannot be imported ({result['instruction_words']} instruction "
        f"words seen; policy trained {result['frames_trained']:,} frames).")
  return 0 if result["same_actions"] == result["steps"] else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
