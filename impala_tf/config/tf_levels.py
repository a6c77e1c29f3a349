"""Levels that have a version written in TensorFlow (`impala_tf.tfenvs`),
which anakin mode (`--run_mode=anakin`, `impala_tf.anakin`) steps inside
its compiled program. Without TensorFlow, so that a run's plan can refuse
other levels before anything starts.
"""

# (suite, level) → "module:class" of its `tfenvs.TFEnvironment`.
TF_LEVELS = {
    ("catch", "catch"): "impala_tf.tfenvs.catch:Catch",
    ("gymnasium", "CartPole-v1"): "impala_tf.tfenvs.cartpole:CartPole",
}


def accepted() -> str:
  """The levels anakin mode takes, in words."""
  return ", ".join(f"--suite={suite} --levels={level}"
                   for suite, level in TF_LEVELS)


def check(suite: str, levels) -> str:
  """The "module:class" of the one level `levels` of `suite`.

  Raises:
    ValueError: several levels, or one without a TensorFlow version.
  """
  levels = tuple(levels)
  if len(levels) != 1 or (suite, levels[0]) not in TF_LEVELS:
    raise ValueError(
        f"--run_mode=anakin steps one level written in TensorFlow; "
        f"--suite={suite} --levels={','.join(levels)} has none. It takes "
        f"{accepted()}.")
  return TF_LEVELS[(suite, levels[0])]


def make(suite: str, level: str):
  """A new `tfenvs.TFEnvironment` for `level` of `suite` (imports TF)."""
  import importlib  # pylint: disable=g-import-not-at-top
  module, name = check(suite, [level]).split(":")
  return getattr(importlib.import_module(module), name)()
