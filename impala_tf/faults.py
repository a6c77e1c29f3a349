"""Named points where tests and the fault-injection run make things fail.

`IMPALA_TF_FAULTS` holds a comma-separated list of points to fail, e.g.
`IMPALA_TF_FAULTS=stager`; `fail_if_injected(point)` raises `InjectedFault`
there. Nothing is injected unless that variable is set.
"""

import os

ENV_VAR = "IMPALA_TF_FAULTS"


class InjectedFault(RuntimeError):
  """A failure asked for through `IMPALA_TF_FAULTS`."""


def injected() -> frozenset[str]:
  return frozenset(p.strip() for p in os.environ.get(ENV_VAR, "").split(",")
                   if p.strip())


def fail_if_injected(point: str) -> None:
  if point in injected():
    raise InjectedFault(f"fault injected at {point!r} ({ENV_VAR})")
