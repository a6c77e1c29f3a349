"""Which DMLab-30 levels this machine's DeepMind Lab build can play.

A build may lack a level's files: the two natlab levels whose maps were
left out of a build's sources, the psychlab levels that read the Brady et
al. (2008) image set, which DeepMind Lab does not ship. The engine reports
the first by calling `exit()` (the whole process ends, with "Didn't find map
..." on its output) and the second with a Lua error from `reset()`. A run
must find this out before it spreads its processes, not through actors that
die one after the other.

So each level is loaded once, in a process of its own that does not import
TensorFlow (`python -m dmlab30.availability LEVEL MODE`): it creates the
level's `Lab`, resets it and takes one step. Outcomes are kept in a JSON
file under the user's cache directory (`$XDG_CACHE_HOME/impala_tf`, else
`~/.cache/impala_tf`), keyed by the engine build (its files' sizes and
times), the level, the mode and the dataset path, so only the first run on a
build pays for the loads (0.3 s to 13 s a level on one core).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any, Mapping, Optional, Sequence

from dmlab30 import levels as levels_lib

CACHE_FILE = "dmlab_levels.json"

# [ours] A level that has not loaded in this time is reported as unable to
# run (the slowest measured load, skymaze, took 13 s on one core).
PROBE_TIMEOUT_S = 180.0

_MISSING_MAP = re.compile(r"Didn't find map '([^']+)'")
_DATASET = "brady_konkle_oliva2008"


def cache_directory() -> str:
  """Where outcomes are kept: `$XDG_CACHE_HOME/impala_tf`, else
  `~/.cache/impala_tf`."""
  root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(root, "impala_tf")


def _engine_identity() -> Optional[str]:
  """A digest of the installed engine's files (names, sizes, times), or
  None when `deepmind_lab` cannot be found."""
  spec = importlib.util.find_spec("deepmind_lab")
  if spec is None or not spec.origin:
    return None
  directory = os.path.dirname(spec.origin)
  digest = hashlib.sha256(directory.encode())
  for name in sorted(os.listdir(directory)):
    if name.endswith(".so") or name == os.path.basename(spec.origin):
      stat = os.stat(os.path.join(directory, name))
      digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
  return digest.hexdigest()[:16]


def reason_from_output(output: str, returncode: int) -> str:
  """One line saying why a level could not load, from what its probe
  printed and how it ended."""
  missing = _MISSING_MAP.search(output)
  if missing:
    return (f"its map '{missing.group(1)}' is not in this DeepMind Lab build "
            "(the engine looked for it and exited); a build from the whole "
            "google-deepmind/lab repository has it")
  if _DATASET in output:
    return ("it shows images of the Brady et al. (2008) object set, which "
            "DeepMind Lab does not ship: download it as DeepMind Lab's "
            "data/brady_konkle_oliva2008/README.md says and pass "
            "--dataset_path=DIR")
  lines = [line.strip() for line in output.splitlines() if line.strip()]
  errors = [line for line in lines if "Error" in line or "error" in line]
  detail = (errors or lines or [""])[-1]
  how = (f"the engine ended its process with code {returncode}"
         if returncode > 0 else f"the engine's process was killed by signal "
         f"{-returncode}" if returncode < 0 else "it failed")
  return f"{how}: {detail}" if detail else how


def _probe_in_subprocess(level: str, mode: str, dataset_path: Optional[str],
                         timeout_s: float) -> tuple[bool, str, bool]:
  """(loads, reason, definitive) for one level, tried in a new process."""
  argv = [sys.executable, "-m", "dmlab30.availability", level, mode]
  if dataset_path:
    argv.append(os.fspath(dataset_path))
  try:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout_s, check=False)
  except subprocess.TimeoutExpired:
    return False, f"it did not load within {timeout_s:g} s", False
  output = done.stdout.decode(errors="replace")
  if done.returncode == 0 and "level loads" in output:
    return True, "", True
  return False, reason_from_output(output, done.returncode), True


def _probe_in_process(level: str, mode: str, options: Mapping[str, Any]
                      ) -> tuple[bool, str, bool]:
  """The same with an engine object given in `options["engine"]` (a fake,
  which cannot end this process)."""
  from dmlab30 import env as env_lib  # pylint: disable=g-import-not-at-top
  try:
    env = env_lib.make(level, mode=mode, **options)
    try:
      env.reset()
      env.step(0)
    finally:
      env.close()
  except RuntimeError as e:
    return False, reason_from_output(str(e), 1), True
  return True, "", True


def unavailable_levels(levels: Sequence[str], mode: str = "train",
                       options: Optional[Mapping[str, Any]] = None,
                       timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, str]:
  """The levels of `levels` this engine cannot play in `mode` ("train" or
  "test"), each with one line saying why and what to do.

  Args:
    levels: canonical level names.
    mode: "train" (the `_train` scripts) or "test" (`_test`, held out).
    options: the suite's environment options; `dataset_path` is passed to
      the probe, and an `engine` object (a fake module) is probed in this
      process instead of in new ones.
    timeout_s: how long one level may take to load.
  """
  options = dict(options or {})
  if options.get("engine") is not None:
    probe_options = {k: v for k, v in options.items()
                     if k in ("engine", "dataset_path", "extra_config")}
    outcomes = {level: _probe_in_process(level, mode, probe_options)
                for level in levels}
    return {level: reason for level, (ok, reason, _) in outcomes.items()
            if not ok}
  dataset_path = options.get("dataset_path")
  identity = _engine_identity()
  path = os.path.join(cache_directory(), CACHE_FILE)
  known = _read_cache(path)
  keys = {level: f"{identity}|{level}|{mode}|{dataset_path or ''}"
          for level in levels}
  to_probe = [level for level in levels if keys[level] not in known]
  if to_probe:
    workers = max(1, min(len(to_probe), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      found = dict(zip(to_probe, pool.map(
          lambda level: _probe_in_subprocess(level, mode, dataset_path,
                                             timeout_s), to_probe)))
    fresh = {keys[level]: {"loads": ok, "reason": reason}
             for level, (ok, reason, definitive) in found.items()
             if definitive}
    if fresh and identity is not None:
      _write_cache(path, fresh)
    known.update({keys[level]: {"loads": ok, "reason": reason}
                  for level, (ok, reason, _) in found.items()})
  return {level: known[keys[level]]["reason"] for level in levels
          if not known[keys[level]]["loads"]}


def _read_cache(path: str) -> dict[str, dict]:
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, ValueError):
    return {}  # Unreadable: probe again, and write a good one.
  return data if isinstance(data, dict) else {}


def _write_cache(path: str, fresh: Mapping[str, dict]):
  """Adds `fresh` to the file; concurrent writers each add theirs (a lost
  update only costs a probe again)."""
  directory = os.path.dirname(path)
  try:
    os.makedirs(directory, exist_ok=True)
    data = _read_cache(path)
    data.update(fresh)
    fd, temporary = tempfile.mkstemp(prefix=".dmlab_levels.", dir=directory)
    with os.fdopen(fd, "w") as f:
      json.dump(data, f, indent=1, sort_keys=True)
    os.replace(temporary, path)
  except OSError:
    pass  # A read-only home: outcomes are found again next time.


def _probe_main(argv: Sequence[str]) -> int:
  """`python -m dmlab30.availability LEVEL MODE [DATASET_PATH]`: loads the
  level, resets it, takes one step; prints "level loads" and exits 0, or
  fails as the engine does."""
  if len(argv) not in (2, 3):
    print("usage: python -m dmlab30.availability LEVEL train|test "
          "[DATASET_PATH]", file=sys.stderr)
    return 2
  from dmlab30 import env as env_lib  # pylint: disable=g-import-not-at-top
  level, mode = levels_lib.canonical_name(argv[0]), argv[1]
  dataset_path = argv[2] if len(argv) == 3 else None
  env = env_lib.make(level, mode=mode, dataset_path=dataset_path)
  try:
    env.reset()
    env.step(0)
  finally:
    env.close()
  print("level loads", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(_probe_main(sys.argv[1:]))
