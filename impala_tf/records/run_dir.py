"""The run directory: what a run writes besides checkpoints and summaries.

Layout of `--logdir` (every path through `tf.io.gfile`, so a `gs://` bucket
or an NFS directory works like a local one):

  config.json       the run's experiment (suite, levels, config, options),
                    written at start; a resumed run is checked against it
  checkpoints/      tf.train.CheckpointManager's checkpoints
  events.out.*      TensorBoard summaries
  saved_model/      the exported policy (`impala_tf.export`), at the end
  result.json       frames, updates, recent returns and status, at the end
  actors.json       actor restarts and their last cause (local mode)
  LOCK              held by the run that uses the directory (`run_lock.py`)

Files of ours are written to a temporary name and renamed, so a reader
never sees half a file. Local paths use plain file calls, so the launcher can
check a run directory before TensorFlow starts.
"""

import dataclasses
import json
import os
from typing import Any, Optional

from impala_tf.config import presets

CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"
CHECKPOINT_DIR = "checkpoints"
SAVED_MODEL_DIR = "saved_model"
# Written by the local launcher's supervisor: actor restarts and causes.
ACTORS_STATUS_FILE = "actors.json"
# Inside an exported policy: its metadata as a plain JSON file.
POLICY_METADATA_FILE = "assets.extra/impala_tf.json"

# What a resumed run may not change: the network's shape or what it is
# trained on. Everything else in the config (e.g. total_frames, the
# learning rate) may change and is reported.
_IDENTITY_FIELDS = ("suite", "levels", "num_actions", "observation_spec")
_IDENTITY_CONFIG_FIELDS = ("torso", "use_lstm", "use_instruction")


class ResumeMismatchError(ValueError):
  """The run directory holds a run with another network or suite."""


class _LocalFiles:
  """The few `tf.io.gfile` calls used here, for local paths."""

  GFile = open  # pylint: disable=invalid-name

  @staticmethod
  def exists(path):
    return os.path.exists(path)

  @staticmethod
  def makedirs(path):
    os.makedirs(path, exist_ok=True)

  @staticmethod
  def rename(src, dst, overwrite=False):
    del overwrite  # os.replace always overwrites.
    os.replace(src, dst)


def _files(path: str):
  """`tf.io.gfile` for a URL (gs://, hdfs://, ...); plain files otherwise,
  so the launcher can read a local run directory without starting TF."""
  if "://" not in path:
    return _LocalFiles
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def make_dirs(path: str) -> None:
  """Creates directory `path` and its parents (nothing if it exists)."""
  _files(path).makedirs(path)


def write_text(path: str, text: str) -> None:
  """Writes `path` whole or not at all (temporary name, then rename)."""
  files = _files(path)
  temporary = f"{path}.tmp-{os.getpid()}"
  with files.GFile(temporary, "w") as f:
    f.write(text)
  files.rename(temporary, path, overwrite=True)


def write_json(path: str, value: Any) -> None:
  write_text(path, json.dumps(value, indent=2, sort_keys=True,
                              default=repr) + "\n")


def read_json(path: str) -> Optional[Any]:
  """The JSON in `path`, or None if there is no such file."""
  files = _files(path)
  if not files.exists(path):
    return None
  with files.GFile(path) as f:
    return json.load(f)


def describe(experiment) -> dict:
  """The experiment as plain JSON values (what config.json holds)."""
  return {
      "suite": experiment.suite,
      "levels": list(experiment.levels),
      "num_actions": experiment.num_actions,
      "action_names": list(experiment.action_names),
      "observation_spec": {
          name: [list(shape), str(_dtype_name(dtype))]
          for name, (shape, dtype) in sorted(
              experiment.observation_spec.items())},
      "envs_per_actor": experiment.envs_per_actor,
      "env_options": {k: v for k, v in sorted(experiment.env_options.items())
                      if _is_json(v)},
      "frame_stack": experiment.frame_stack,
      "config": dataclasses.asdict(experiment.config),
  }


def _is_json(value) -> bool:
  """Whether `value` is plain JSON (options such as a fake engine module,
  given programmatically, are not recorded)."""
  try:
    json.dumps(value)
  except TypeError:
    return False
  return True


def _dtype_name(dtype) -> str:
  import numpy as np  # pylint: disable=g-import-not-at-top
  return np.dtype(dtype).name


def config_from(description: dict) -> presets.Config:
  """The `presets.Config` saved in a description."""
  return presets.Config(**description["config"])


def compare(saved: dict, new: dict) -> tuple[list[str], list[str]]:
  """(refused, allowed): one "name: old → new" line per difference."""
  refused, allowed = [], []
  for name in _IDENTITY_FIELDS:
    if saved.get(name) != new.get(name):
      refused.append(f"{name}: {saved.get(name)} → {new.get(name)}")
  old_config, new_config = saved.get("config", {}), new["config"]
  # A setting added after the run was saved: the run had its default (a
  # new setting's default keeps the behaviour it had before).
  defaults = {field.name: field.default
              for field in dataclasses.fields(presets.Config)}
  for name in sorted(set(old_config) | set(new_config)):
    old = old_config.get(name, defaults.get(name))
    value = new_config.get(name)
    if old == value:
      continue
    line = f"{name}: {old} → {value}"
    (refused if name in _IDENTITY_CONFIG_FIELDS else allowed).append(line)
  for name in ("env_options", "envs_per_actor"):
    if saved.get(name) != new.get(name):
      allowed.append(f"{name}: {saved.get(name)} → {new.get(name)}")
  return refused, allowed


def check_resume(logdir: str, experiment) -> list[str]:
  """Checks `experiment` against the run saved in `logdir`, if any.

  Returns the allowed changes (empty for a new run or an unchanged one).

  Raises:
    ResumeMismatchError: the saved run has another network or suite; the
      message names each difference.
  """
  saved = read_json(os.path.join(logdir, CONFIG_FILE))
  if saved is None:
    return []
  refused, allowed = compare(saved, describe(experiment))
  if refused:
    raise ResumeMismatchError(
        f"{logdir} holds a run with a different network or suite, which "
        f"its checkpoints cannot resume: {'; '.join(refused)}. Use another "
        "--logdir, or the saved settings.")
  return allowed


def save_config(logdir: str, experiment) -> None:
  """Writes config.json (creating `logdir`)."""
  _files(logdir).makedirs(logdir)
  write_json(os.path.join(logdir, CONFIG_FILE), describe(experiment))


def load_experiment(logdir: str):
  """Rebuilds the `experiment.Experiment` a run directory was made with."""
  from impala_tf.config import experiment as experiment_lib  # pylint: disable=g-import-not-at-top
  saved = read_json(os.path.join(logdir, CONFIG_FILE))
  if saved is None:
    raise FileNotFoundError(f"{logdir} is not a run directory: it has no "
                            f"{CONFIG_FILE}.")
  return experiment_lib.build(saved["suite"], saved["levels"],
                              config_from(saved), saved["envs_per_actor"],
                              saved["env_options"])
