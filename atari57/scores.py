"""Human-normalised scores of Atari-57 games and their median and mean.

The human-normalised score of a game score `s` is `(s - r) / (h - r)` with the
game's random `r` and human `h` reference scores (`games.REFERENCE_SCORES`):
0.0 is random play, 1.0 is human. Papers report the median and the mean of the
uncapped score over the 57 games (IMPALA Table 4); the mean of the score
capped at 1.0 is the fitness of the paper's multi-task PBT (Table G.1).
"""

import math
from typing import Mapping, NamedTuple

import numpy as np

from atari57 import games as games_lib


class SuiteScores(NamedTuple):
  """Human-normalised scores over a set of games (1.0 = human)."""
  median: float
  mean: float
  capped_mean: float  # mean of min(1, score): the PBT fitness of Table G.1
  num_games: int


def normalized_score(game: str, score: float) -> float:
  """Human-normalised score of a game score: 0.0 = random, 1.0 = human.

  Args:
    game: one of `atari57.GAMES`, in any spelling `games.canonical_name`
      accepts.
    score: the undiscounted, unclipped game score of an episode (or a mean of
      such scores).
  """
  reference = games_lib.REFERENCE_SCORES[games_lib.canonical_name(game)]
  score = float(score)
  if not math.isfinite(score):
    raise ValueError(f"The score of {game!r} must be a finite number, got "
                     f"{score}.")
  return (score - reference.random) / (reference.human - reference.random)


def suite_scores(scores_by_game: Mapping[str, float]) -> SuiteScores:
  """Median and mean human-normalised score over a set of games.

  Args:
    scores_by_game: game name -> raw game score (e.g. the evaluation mean of
      that game). Any non-empty subset of the 57 games; each game at most once.

  Returns:
    `SuiteScores` of the human-normalised scores (1.0 = human; multiply by 100
    for the percentages papers print).
  """
  if not scores_by_game:
    raise ValueError("suite_scores needs the score of at least one game, got "
                     "none.")
  normalized = {}
  for game, score in scores_by_game.items():
    name = games_lib.canonical_name(game)
    if name in normalized:
      raise ValueError(f"Game {name!r} is given twice in scores_by_game (as "
                       f"{game!r} and another spelling); give each game once.")
    normalized[name] = normalized_score(name, score)
  values = np.array(list(normalized.values()), np.float64)
  return SuiteScores(median=float(np.median(values)),
                     mean=float(np.mean(values)),
                     capped_mean=float(np.mean(np.minimum(values, 1.0))),
                     num_games=len(values))
