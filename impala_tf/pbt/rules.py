"""The rules of population-based training (App. F), as pure functions.

* Initial hyperparameters (Table D.1, the paper's sweep and PBT start):
  learning rate and entropy cost log-uniform on [5e-6, 5e-3] and
  [5e-5, 1e-2], RMSProp ε one of {1e-1, 1e-3, 1e-5, 1e-7}. Atari's
  population also tunes the gradient-clip threshold (Table G.1); Table D.1
  gives no range for it, so it is drawn log-uniform on [10, 160], a factor
  of 4 either side of Table G.1's 40 [ours].
* Ready: after `burn_in_frames` of the member's own frames (20M) and
  `ready_episodes` new episode returns (5,000) since it was last ready.
* Exploit: against one other member drawn uniformly at random; copy its
  weights and hyperparameters if its fitness exceeds this member's by more
  than `exploit_threshold` (5 points of the capped score, in percent).
* Explore: whether or not it copied, each tuned hyperparameter changes
  with probability `perturb_probability` (1/3) in all, "permuted with 33%
  probability by multiplying with either 1.2 or 1/1.2" [paper App. F]:
  multiplied by `perturb_factor` (1.2) with probability 1/6, by its inverse
  with probability 1/6, and kept with probability 2/3. An unbiased
  perturbation, unlike Jaderberg et al.'s 1.2 / 0.8. (The code once read
  the 33% as applying each way, a change with probability 2/3. No source
  for that reading was found: the paper's released code has no PBT, and
  Jaderberg et al.'s perturbation by 0.8 or 1.2 gives no such rate; so
  only the paper's reading is offered.)
* The learning-rate schedule: a member's learning rate is not annealed
  (`anneal=False`): it stays as drawn and only explore and exploit change
  it [paper Fig. F.1, our reading]. The paper does not say; Fig. F.1 sets
  the schedule PBT found against the linear annealing of the best sweep
  run, which reads as PBT runs not annealing. Table G.1's linear annealing
  to 0 for a member is `anneal=True`.
* Fitness: the mean capped human-normalised score (percent) over the
  suite's levels of the episodes since the member was last ready; on a
  single level, or a suite without reference scores, the mean return.
"""

import dataclasses
import math
from typing import Mapping, Optional, Sequence

import numpy as np

# Table D.1. (kind, arguments) of each tuned hyperparameter's initial draw.
INITIAL_DISTRIBUTIONS = {
    "learning_rate": ("log_uniform", (5e-6, 5e-3)),       # [paper Table D.1]
    "entropy_cost": ("log_uniform", (5e-5, 1e-2)),        # [paper Table D.1]
    "rmsprop_epsilon": ("categorical", (1e-1, 1e-3, 1e-5, 1e-7)),  # [paper Table D.1]
    "max_grad_norm": ("log_uniform", (10.0, 160.0)),      # [ours] 40 ×/÷ 4.
}
# How a population starts: every member drawn from Table D.1, or every
# member at the config's values (its flags).
INITIAL_MODES = ("table_d1", "config")


@dataclasses.dataclass(frozen=True)
class Rules:
  """App. F's constants; the defaults are the paper's."""
  burn_in_frames: int = 20_000_000       # [paper App. F]
  ready_episodes: int = 5_000            # [paper App. F]
  exploit_threshold: float = 5.0         # [paper App. F] points, percent.
  perturb_factor: float = 1.2            # [paper App. F]
  # [paper App. F] "33%", in all: half of it up, half down.
  perturb_probability: float = 1.0 / 3.0
  # [paper Fig. F.1, our reading] A member's learning rate stays constant
  # between PBT's changes; True anneals it linearly to 0 at total_frames
  # (or --anneal_frames) as a plain run does (Table G.1).
  anneal: bool = False

  def __post_init__(self):
    if self.burn_in_frames < 0:
      raise ValueError(f"burn_in_frames={self.burn_in_frames} must be >= 0.")
    if self.ready_episodes < 1:
      raise ValueError(f"ready_episodes={self.ready_episodes} must be >= 1.")
    if self.perturb_factor <= 1.0:
      raise ValueError(f"perturb_factor={self.perturb_factor} must be > 1.")
    if not 0.0 <= self.perturb_probability <= 1.0:
      raise ValueError(f"perturb_probability={self.perturb_probability} "
                       "must be in [0, 1] (the chance of any change, half "
                       "of it each way).")


def tuned_names(config) -> tuple[str, ...]:
  """The hyperparameters a population of `config` tunes: learning rate,
  entropy cost and RMSProp ε (DMLab-30, Table D.1), and the gradient-clip
  threshold where the config clips at all (Atari, Table G.1)."""
  names = ["learning_rate", "entropy_cost", "rmsprop_epsilon"]
  if config.max_grad_norm is not None:
    names.append("max_grad_norm")
  return tuple(names)


def member_rng(seed: int, member: int) -> np.random.Generator:
  """The generator of member `member` of a population with `seed`: the same
  draws on every host and after every restart."""
  return np.random.default_rng([seed, member])


def initial_hyperparameters(config, rng: np.random.Generator,
                            mode: str = "table_d1") -> dict[str, float]:
  """A member's starting hyperparameters (`INITIAL_MODES`)."""
  if mode not in INITIAL_MODES:
    raise ValueError(f"Unknown initial mode {mode!r}; expected one of "
                     f"{INITIAL_MODES}.")
  values = {name: float(getattr(config, name)) for name in tuned_names(config)}
  if mode == "config":
    return values
  for name in INITIAL_DISTRIBUTIONS:
    if name not in values:
      continue  # Not tuned (a config that does not clip).
    values[name] = _draw(name, rng)
  return values


# Table D.1's three: a hyperparameter sweep's draws (Sec. 5.2.2's 24).
SWEEP_HYPERPARAMETERS = ("learning_rate", "entropy_cost", "rmsprop_epsilon")


def sweep_draw(rng: np.random.Generator) -> dict[str, float]:
  """One hyperparameter set of a sweep: Table D.1's three, drawn."""
  return {name: _draw(name, rng) for name in SWEEP_HYPERPARAMETERS}


def _draw(name: str, rng: np.random.Generator) -> float:
  kind, args = INITIAL_DISTRIBUTIONS[name]
  if kind == "log_uniform":
    low, high = args
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))
  return float(args[rng.integers(len(args))])


def is_ready(frames: int, new_episodes: int, rules: Rules) -> bool:
  """Past the burn-in, with enough new episode returns."""
  return frames >= rules.burn_in_frames and new_episodes >= rules.ready_episodes


def pick_opponent(member: int, candidates: Sequence[int],
                  rng: np.random.Generator) -> Optional[int]:
  """One of the other members with a fitness, uniformly (None if none)."""
  others = sorted(c for c in candidates if c != member)
  if not others:
    return None
  return others[int(rng.integers(len(others)))]


def should_copy(own_fitness: float, other_fitness: float,
                threshold: float) -> bool:
  """Exploit: the other member is better by strictly more than
  `threshold`. A non-finite fitness on either side never copies."""
  if not (math.isfinite(own_fitness) and math.isfinite(other_fitness)):
    return False
  return other_fitness - own_fitness > threshold


def explore(values: Mapping[str, float], rng: np.random.Generator,
            rules: Rules) -> dict[str, float]:
  """Each value changed with probability `perturb_probability`: times
  `perturb_factor` or its inverse, each with half of it; else unchanged."""
  result = {}
  half = rules.perturb_probability / 2.0
  for name in sorted(values):
    draw = rng.uniform()
    factor = (rules.perturb_factor if draw < half else
              1.0 / rules.perturb_factor if draw < 2 * half else 1.0)
    result[name] = float(values[name]) * factor
  return result


def fitness(suite, returns_by_level: Mapping[str, Sequence[float]]) -> float:
  """See the module docstring; NaN while a level has no episode yet.

  Args:
    suite: the `impala_tf.suites.Suite` the member trains on.
    returns_by_level: level → the episode returns since last ready.
  """
  means = {level: (float(np.mean(r)) if len(r) else math.nan)
           for level, r in returns_by_level.items()}
  if any(math.isnan(v) for v in means.values()):
    return math.nan
  if len(means) > 1:
    scores = suite.suite_scores(means)
    if "capped_mean" in scores:
      return float(scores["capped_mean"])
  return float(np.mean(list(means.values())))


def fitness_kind(suite, levels: Sequence[str]) -> str:
  """What `fitness` measures for these levels (for logs and plots)."""
  if len(levels) > 1 and suite.suite_scores(
      {level: 0.0 for level in levels}).get("capped_mean") is not None:
    return "mean capped human-normalised score (%)"
  return "mean episode return"
