"""Errors that end a run with one line instead of a traceback.

Kept free of TensorFlow so the launcher can catch them before TF starts.
"""


class RunError(RuntimeError):
  """The run cannot go on; the message says why and what to do."""


class DivergenceError(RunError):
  """The learner's updates stayed non-finite; the run is over
  (`learner_loop.divergence`)."""
