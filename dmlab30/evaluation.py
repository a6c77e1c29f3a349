"""Test-set evaluation of a policy on DMLab-30 (no TensorFlow needed).

The paper scores an agent on the test levels (`_test` scripts,
`allowHoldOutLevels`, fixed `mixerSeed`) with 500 episodes per level and
reports the mean capped human-normalised score (the paper's Table 3).
"""

import functools
import math
from typing import Callable, Mapping, NamedTuple, Optional, Sequence

import dm_env

from dmlab30 import env as env_lib
from dmlab30 import levels as levels_lib
from dmlab30 import scores

#: Episodes per level in the paper's test evaluation.
PAPER_EPISODES_PER_LEVEL = 500

#: `policy(timestep) -> action index`. It sees every timestep, including the
#: FIRST one of each episode (`timestep.first()`), where a recurrent policy
#: resets its state.
Policy = Callable[[dm_env.TimeStep], int]


class EvaluationResult(NamedTuple):
  """Per-level returns and the suite's human-normalised scores (percent)."""
  returns_by_level: Mapping[str, tuple[float, ...]]
  mean_return_by_level: Mapping[str, float]
  capped_by_level: Mapping[str, float]
  uncapped_by_level: Mapping[str, float]
  capped_score: float
  uncapped_score: float


def evaluate(policy: Policy, *, levels: Sequence[str] = levels_lib.LEVELS,
             num_episodes: int = PAPER_EPISODES_PER_LEVEL, seed: int = 1,
             make_env: Optional[Callable[[str], dm_env.Environment]] = None,
             **make_kwargs) -> EvaluationResult:
  """Runs `policy` for `num_episodes` full episodes on each test level.

  Args:
    policy: see `Policy`.
    levels: levels to evaluate (canonical names); the suite scores average
      over these.
    num_episodes: complete episodes per level.
    seed: seed of each level's environment (the official code uses 1).
    make_env: `level -> dm_env.Environment`; default `dmlab30.make` in test
      mode with `seed` and `make_kwargs` (e.g. `level_cache_dir`,
      `dataset_path`, `engine`).

  Returns:
    An `EvaluationResult`.
  """
  if num_episodes < 1:
    raise ValueError(f"num_episodes must be at least 1, got {num_episodes}.")
  if make_env is None:
    make_env = functools.partial(env_lib.make, mode="test", seed=seed,
                                 **make_kwargs)
  elif make_kwargs:
    raise ValueError(f"make_kwargs {sorted(make_kwargs)} are only used with "
                     f"the default make_env.")
  names = [levels_lib.canonical_name(level) for level in levels]
  if not names:
    raise ValueError("levels must name at least one DMLab-30 level.")
  returns_by_level = {}
  for name in names:
    env = make_env(name)
    try:
      returns_by_level[name] = _run_episodes(env, policy, num_episodes)
    finally:
      env.close()
  means = {name: math.fsum(r) / len(r) for name, r in returns_by_level.items()}
  return EvaluationResult(
      returns_by_level=returns_by_level,
      mean_return_by_level=means,
      capped_by_level={n: scores.normalized_score(n, m, capped=True)
                       for n, m in means.items()},
      uncapped_by_level={n: scores.normalized_score(n, m, capped=False)
                         for n, m in means.items()},
      capped_score=scores.suite_score(means, capped=True),
      uncapped_score=scores.suite_score(means, capped=False))


def _run_episodes(env, policy, num_episodes) -> tuple[float, ...]:
  returns = []
  while len(returns) < num_episodes:
    timestep = env.reset()
    episode_return = 0.0
    while not timestep.last():
      timestep = env.step(policy(timestep))
      episode_return += float(timestep.reward)
    returns.append(episode_return)
  return tuple(returns)
