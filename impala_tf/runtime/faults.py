"""Named points where tests and the fault-injection run make things fail.

`IMPALA_TF_FAULTS` holds a comma-separated list of points to fail, e.g.
`IMPALA_TF_FAULTS=stager`; `IMPALA_TF_FAULTS_FILE` names a file holding such
a list, read at every check, so a running process can be made to fail for a
while (`python -m impala_tf.chaos` does). `fail_if_injected(point)` raises
`InjectedFault` there. Nothing is injected unless one of them is set.

Points: "stager" (the learner's batch staging), "checkpoint_write" (a
checkpoint save, as a full disk would fail it), "actor" (an actor process
at start), "nonfinite_loss" (an update's batch gets NaN rewards),
"dmlab_engine_unbound" (DeepMind Lab's libraries are loaded as the engine
itself loads them, which crashes beside TensorFlow: `dmlab30.engine`). An entry
`point:ID` fires once per ID in a process (`take_once`), however long it
stays in the file.
"""

import os

ENV_VAR = "IMPALA_TF_FAULTS"
FILE_ENV_VAR = "IMPALA_TF_FAULTS_FILE"


class InjectedFault(OSError):
  """A failure asked for through `IMPALA_TF_FAULTS` (an OSError, as the
  disk and network failures it stands for are)."""


def injected() -> frozenset[str]:
  text = os.environ.get(ENV_VAR, "")
  path = os.environ.get(FILE_ENV_VAR)
  if path:
    try:
      with open(path) as f:
        text += "," + f.read()
    except FileNotFoundError:
      pass  # No file: nothing injected from it right now.
  return frozenset(p.strip() for p in text.replace("\n", ",").split(",")
                   if p.strip())


def is_injected(point: str) -> bool:
  return point in injected()


_taken: set[str] = set()


def take_once(point: str) -> bool:
  """True where `point` is injected: always for a plain `point` entry, the
  first time only for each `point:ID` entry."""
  for entry in injected():
    if entry == point:
      return True
    if entry.startswith(point + ":") and entry not in _taken:
      _taken.add(entry)
      return True
  return False


def fail_if_injected(point: str) -> None:
  if is_injected(point):
    raise InjectedFault(f"fault injected at {point!r}")
