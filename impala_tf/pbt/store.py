"""The files a population shares, under its directory (`--pbt_dir`).

  DIR/population.json                 what `python -m impala_tf.pbt` started
  DIR/member-<i>/                     member i's run directory (default)
  DIR/pbt/members/member-<i>.json     member i's latest state (below)
  DIR/pbt/lineage/member-<i>-<frames>-<time>.json
                                      one file per ready event of member i

A member's state: its frames and fitness when it was last ready, its
hyperparameters now, and the checkpoint others copy (`copy_checkpoint`,
written at every ready event; the one before it is kept so a reader never
finds it gone mid-copy). Every file is written whole (a temporary name,
then a rename) through `tf.io.gfile` (run_dir.py), so a local disk, NFS
or a `gs://` bucket all work; nothing is ever appended to.
"""

import os
import re
import time
from typing import Optional

from impala_tf.records import run_dir

POPULATION_FILE = "population.json"
MEMBERS_DIR = os.path.join("pbt", "members")
LINEAGE_DIR = os.path.join("pbt", "lineage")
# Under each member's run directory: the checkpoints others copy.
COPY_DIR = "pbt_copies"
_MEMBER_FILE = re.compile(r"member-(\d+)\.json$")


def member_logdir(pbt_dir: str, member: int) -> str:
  """Member `member`'s default run directory."""
  return os.path.join(pbt_dir, f"member-{member}")


def _glob(pattern: str) -> list[str]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(tf.io.gfile.glob(pattern))


def write_member_state(pbt_dir: str, member: int, state: dict) -> None:
  run_dir.make_dirs(os.path.join(pbt_dir, MEMBERS_DIR))
  run_dir.write_json(os.path.join(pbt_dir, MEMBERS_DIR,
                                  f"member-{member}.json"),
                     dict(state, member=member))


def read_member_state(pbt_dir: str, member: int) -> Optional[dict]:
  return run_dir.read_json(os.path.join(pbt_dir, MEMBERS_DIR,
                                        f"member-{member}.json"))


def read_members(pbt_dir: str) -> dict[int, dict]:
  """member → its latest state, for every member that has written one."""
  states = {}
  for path in _glob(os.path.join(pbt_dir, MEMBERS_DIR, "member-*.json")):
    match = _MEMBER_FILE.search(path)
    if match:
      state = run_dir.read_json(path)
      if state is not None:
        states[int(match.group(1))] = state
  return states


def write_event(pbt_dir: str, event: dict) -> str:
  """Records one ready event of `event["member"]` at `event["frames"]`."""
  directory = os.path.join(pbt_dir, LINEAGE_DIR)
  run_dir.make_dirs(directory)
  # The time too: a member resumed from an older checkpoint reaches the
  # same frame counts again, and its earlier events stay.
  path = os.path.join(directory, f"member-{event['member']}-"
                      f"{int(event['frames']):015d}-{time.time_ns()}.json")
  run_dir.write_json(path, event)
  return path


def read_events(pbt_dir: str) -> list[dict]:
  """Every recorded ready event, ordered by member then frames."""
  events = [run_dir.read_json(p) for p in
            _glob(os.path.join(pbt_dir, LINEAGE_DIR, "member-*.json"))]
  return sorted((e for e in events if e is not None),
                key=lambda e: (e["member"], e["frames"], e.get("time", 0)))


def write_population(pbt_dir: str, description: dict) -> None:
  run_dir.make_dirs(pbt_dir)
  run_dir.write_json(os.path.join(pbt_dir, POPULATION_FILE), description)


def read_population(pbt_dir: str) -> Optional[dict]:
  return run_dir.read_json(os.path.join(pbt_dir, POPULATION_FILE))
