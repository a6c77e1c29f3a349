"""What every command-line tool (`python -m impala_tf.<tool>`) shares.

A tool's bad input is one line on stderr, `impala_tf.<tool>: error: ...`,
and exit code 2: a flag absl cannot parse, and a usage error its `main`
raises (`app.UsageError`, `plan.PlanError`, a suite whose engine is
missing). Failures that are not the user's input (a run that could not
go on) are one line and exit code 1. Nothing prints the tool's usage
unless asked (`--help`).
"""

from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from absl import app
from absl import flags

from impala_tf.config import errors
from impala_tf.config import plan as plan_lib
from impala_tf import suites


def error_line(tool: str, error: BaseException) -> str:
  return f"impala_tf.{tool}: error: {error}"


def run(tool: str, main: Callable, *,
        define_flags: Optional[Callable[[], None]] = None,
        known_only: bool = False,
        usage_errors: Sequence[type] = (),
        failures: Sequence[type] = ()) -> None:
  """absl's `app.run(main)` for tool `tool`, with one-line errors (module
  docstring).

  Args:
    tool: the module name after `impala_tf.` (e.g. "ablate").
    main: the tool's main(argv).
    define_flags: defines the tool's flags first.
    known_only: keep flags the tool does not define in argv (for tools
      that pass them on to runs) instead of refusing them.
    usage_errors: further exception types that are the user's input
      (exit code 2).
    failures: exception types that end the tool with one line and exit
      code 1.
  """
  if define_flags is not None:
    define_flags()
  usage = (app.UsageError, plan_lib.PlanError, suites.SuiteUnavailableError,
           *usage_errors)
  ended = (errors.RunError, *failures)

  def parse(argv):
    try:
      return flags.FLAGS(argv, known_only=known_only)
    except flags.Error as e:
      print(error_line(tool, e), file=sys.stderr)
      sys.exit(2)

  def guarded(argv):
    try:
      return main(argv)
    except usage as e:
      print(error_line(tool, e), file=sys.stderr)
      return 2
    except ended as e:
      print(error_line(tool, e), file=sys.stderr)
      return 1

  app.run(guarded, flags_parser=parse)
