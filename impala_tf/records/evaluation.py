"""A suite's evaluation protocol played by an exported policy.

`Policy` drives a SavedModel of `impala_tf.records.saved_policy` through its
signatures only; `evaluate` plays the suite's evaluation episodes on each
level (Atari: whole games after 1 to 30 no-op steps, capped at 108,000
frames; DMLab-30: the `_test` levels with the fixed evaluation mixer seed;
Catch: plain episodes) and returns the report `python -m
impala_tf.evaluate` writes as eval.json and eval.csv.
"""

import csv
import io
import json
import math
import os
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np

STEP_TYPE_FIRST, STEP_TYPE_MID = 0, 1


class EvaluationError(ValueError):
  """The policy and the levels asked for do not go together."""


def _metadata(loaded) -> dict:
  raw = loaded.signatures["get_metadata"]()
  value = {name: tensor.numpy() for name, tensor in raw.items()}
  decode = lambda x: x.decode() if isinstance(x, bytes) else x
  return {
      "suite": decode(value["suite"]),
      "levels": [decode(x) for x in value["levels"]],
      "num_actions": int(value["num_actions"]),
      "action_names": [decode(x) for x in value["action_names"]],
      "frames_trained": int(value["frames_trained"]),
      "precision": decode(value["precision"]),
      "config": json.loads(decode(value["config"])),
  }


class Policy:
  """An exported policy, stepped through its `action` signature."""

  def __init__(self, path: str):
    from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
    tf = tf_startup.import_tensorflow()
    self._tf = tf
    self.path = path
    self._loaded = tf.saved_model.load(path)
    self.metadata = _metadata(self._loaded)
    self._action = self._loaded.signatures["action"]
    self._initial_state = self._loaded.signatures["get_initial_state"]
    self._input_names = set(self._action.structured_input_signature[1])
    self._state_names = sorted(
        n for n in self._input_names if n.startswith("core_state"))

  def initial_state(self, batch_size: int) -> dict:
    state = self._initial_state(batch_size=self._tf.constant(batch_size))
    return {name: state[name] for name in self._state_names}

  def step(self, observation: dict, prev_action, prev_reward, step_type,
           state: dict, greedy: bool):
    """(actions int32 [B], new state)."""
    tf = self._tf
    inputs = {name: tf.constant(value) for name, value in observation.items()
              if name in self._input_names}
    outputs = self._action(
        prev_action=tf.constant(prev_action, tf.int32),
        prev_reward=tf.constant(prev_reward, tf.float32),
        step_type=tf.constant(step_type, tf.int32),
        greedy=tf.constant(greedy), **inputs, **state)
    return (outputs["action"].numpy(),
            {name: outputs[name] for name in self._state_names})


def _quotas(episodes: int, num_envs: int) -> np.ndarray:
  # Each environment plays a fixed share: counting the first episodes to
  # finish anywhere would favour short episodes.
  return np.array([episodes // num_envs + (i < episodes % num_envs)
                   for i in range(num_envs)])


def play(policy: Policy, env, episodes: int, greedy: bool = False,
         progress: Optional[Callable[[list], None]] = None,
         recorder: Optional["Recorder"] = None) -> list[float]:
  """Plays `episodes` episodes on the batched evaluation `env`; returns
  their scores (the environment's `episode_return`). A `recorder` gets
  every step's frames (`env.render()`) while it wants them."""
  quotas = _quotas(episodes, env.num_envs)
  returns: list[list[float]] = [[] for _ in range(env.num_envs)]
  out = env.reset()
  state = policy.initial_state(env.num_envs)
  prev_action = np.zeros(env.num_envs, np.int32)
  while any(len(r) < q for r, q in zip(returns, quotas)):
    if recorder is not None and recorder.wants_frames:
      recorder.add(env.render())
    step_type = np.where(out.done, STEP_TYPE_FIRST, STEP_TYPE_MID)
    prev_action, state = policy.step(out.observation, prev_action, out.reward,
                                     step_type, state, greedy)
    out = env.step(prev_action)
    finished = np.flatnonzero(~np.isnan(out.episode_return))
    for i in finished:
      if len(returns[i]) < quotas[i]:
        returns[i].append(float(out.episode_return[i]))
      if recorder is not None:
        recorder.finished(i, float(out.episode_return[i]),
                          int(out.episode_length[i]))
    if finished.size and progress is not None:
      progress([x for r in returns for x in r])
  return [x for r in returns for x in r]


class Recorder:
  """Keeps each environment's frames of its episode under way and writes
  the first `count` episodes to finish as MP4 files in `directory`
  (`records.video`), their returns in the file names.

  Attributes:
    videos: one {"episode", "return", "length", "path"} per file written.
  """

  def __init__(self, level: str, count: int, directory: str, num_envs: int):
    self.level, self.count, self.directory = level, int(count), directory
    self._frames: list[list[np.ndarray]] = [[] for _ in range(num_envs)]
    self.videos: list[dict] = []

  @property
  def wants_frames(self) -> bool:
    return len(self.videos) < self.count

  def add(self, frames) -> None:
    for episode_frames, frame in zip(self._frames, frames):
      episode_frames.append(np.asarray(frame))

  def finished(self, env_index: int, episode_return: float,
               length: int) -> None:
    frames, self._frames[env_index] = self._frames[env_index], []
    if not self.wants_frames:
      return
    from impala_tf.records import video  # pylint: disable=g-import-not-at-top
    episode = len(self.videos) + 1
    path = video.write_mp4(os.path.join(
        self.directory, video.file_name(self.level, episode, episode_return)),
        frames)
    self.videos.append({"episode": episode, "return": episode_return,
                        "length": length, "frames": len(frames),
                        "path": path})


class _Progress:
  """One status line: episodes done, mean so far, time left. Redrawn in
  place on a terminal, printed every 10 s otherwise."""

  def __init__(self, level: str, episodes: int, stream=sys.stdout):
    self._level, self._episodes, self._stream = level, episodes, stream
    self._start = self._last = time.monotonic()
    self._tty = stream.isatty()

  def __call__(self, scores):
    now = time.monotonic()
    if not self._tty and now - self._last < 10 and len(scores) < self._episodes:
      return
    self._last = now
    done = len(scores)
    left = (now - self._start) / done * (self._episodes - done)
    line = (f"{self._level}: {done}/{self._episodes} episodes | mean so far "
            f"{np.mean(scores):.2f} | {_duration(now - self._start)} "
            f"elapsed, {_duration(left)} left")
    self._stream.write(("\r" + line.ljust(79)) if self._tty else line + "\n")
    self._stream.flush()

  def close(self):
    if self._tty:
      self._stream.write("\n")


def _duration(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def evaluate(policy: Policy, levels: Optional[Sequence[str]] = None, *,
             episodes: Optional[int] = None, num_envs: int = 8,
             seed: int = 0, greedy: bool = False,
             log: Callable[[str], None] = print, show_progress: bool = True,
             video: int = 0, video_dir: Optional[str] = None) -> dict:
  """Evaluates `policy` on `levels` (default its own) for `episodes` per
  level (default the suite's `eval_episodes`); returns the report that
  `eval.json` holds. With `video`, the first `video` episodes of each
  level are written as MP4 files to `video_dir` (their paths and returns
  in the report's "videos")."""
  from impala_tf import suites  # pylint: disable=g-import-not-at-top
  if episodes is not None and episodes < 1:
    raise EvaluationError(f"--episodes must be at least 1, got {episodes}.")
  if num_envs < 1:
    raise EvaluationError(f"--num_envs must be at least 1, got {num_envs}.")
  meta = policy.metadata
  suite = suites.get(meta["suite"])
  if episodes is None:
    episodes = suite.eval_episodes
  levels = suite.resolve_levels(levels or meta["levels"])
  options = dict(meta["config"].get("env_options", {}))
  # The suite's own check of the run's options (custom suites read their
  # reference scores there).
  options = suite.check_options(levels, options)
  if video:
    from impala_tf.records import video as video_lib  # pylint: disable=g-import-not-at-top
    video_lib.check_encoder()
    if "render_mode" in suite.extra_option_keys:
      options["render_mode"] = "rgb_array"  # Gymnasium's RGB frames.
  unavailable = suite.unavailable_levels(levels, options, evaluation=True)
  if unavailable:
    raise EvaluationError(
        f"{len(unavailable)} of the {len(levels)} level(s) cannot be "
        "evaluated on this machine (" + "; ".join(
            f"{level}: {why}" for level, why in unavailable.items()) +
        "); leave them out of --levels.")
  num_envs = min(num_envs, episodes)
  report = {"policy": policy.path, "suite": suite.name,
            "frames_trained": meta["frames_trained"],
            "episodes_per_level": episodes, "num_envs": num_envs,
            "seed": seed, "greedy": greedy, "levels": {}}
  for level in levels:
    env = suite.make_eval_env(level, num_envs, seed, options)
    try:
      if env.num_actions != meta["num_actions"]:
        raise EvaluationError(
            f"The policy has {meta['num_actions']} actions but {level} has "
            f"{env.num_actions} with the policy's options {options}; "
            "evaluate levels with the policy's action set.")
      progress = _Progress(level, episodes) if show_progress else None
      recorder = (Recorder(level, min(video, episodes), video_dir, num_envs)
                  if video else None)
      scores = np.array(play(policy, env, episodes, greedy, progress,
                             recorder))
      if progress is not None:
        progress.close()
    finally:
      env.close()
    normalized = suite.normalized_score(level, float(scores.mean()))
    report["levels"][level] = {
        "episodes": int(scores.size), "mean": float(scores.mean()),
        "std": float(scores.std()), "min": float(scores.min()),
        "max": float(scores.max()),
        "normalized_score": None if math.isnan(normalized) else normalized,
        "returns": scores.tolist()}
    if recorder is not None:
      report["levels"][level]["videos"] = recorder.videos
    log(level_line(level, report["levels"][level]))
  means = {level: r["mean"] for level, r in report["levels"].items()}
  report["suite_scores"] = suite.suite_scores(means)
  if report["suite_scores"]:
    log(suite_line(suite.name, report["suite_scores"]))
  return report


def level_line(level: str, result: dict) -> str:
  score = result["normalized_score"]
  return (f"{level}: mean {result['mean']:.2f} ± {result['std']:.2f} over "
          f"{result['episodes']} episodes (min {result['min']:.2f}, max "
          f"{result['max']:.2f})" +
          (f"; normalised {score:.1f}%" if score is not None else ""))


def suite_line(suite: str, scores: dict) -> str:
  return (f"{suite} suite scores (percent of human): " +
          ", ".join(f"{name} {value:.1f}%" for name, value in
                    sorted(scores.items())))


def to_csv(report: dict) -> str:
  """One row per level, then one per suite score."""
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["level", "episodes", "mean_return", "std_return",
                   "min_return", "max_return", "normalized_score_percent"])
  for level, r in report["levels"].items():
    writer.writerow([level, r["episodes"], r["mean"], r["std"], r["min"],
                     r["max"], "" if r["normalized_score"] is None else
                     r["normalized_score"]])
  for name, value in sorted(report["suite_scores"].items()):
    writer.writerow([f"suite_{name}", "", "", "", "", "", value])
  return out.getvalue()


def write_report(report: dict, output_dir: str) -> tuple[str, str]:
  from impala_tf.records import run_dir  # pylint: disable=g-import-not-at-top
  json_path = os.path.join(output_dir, "eval.json")
  csv_path = os.path.join(output_dir, "eval.csv")
  run_dir.make_dirs(output_dir)  # --output may name a new directory.
  run_dir.write_json(json_path, report)
  run_dir.write_text(csv_path, to_csv(report))
  return json_path, csv_path
