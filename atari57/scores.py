"""Human-normalised scores of Atari-57 games and their median and mean.

The human-normalised score of a game score `s` is `100 (s - r) / (h - r)`
percent, with the game's random `r` and human `h` reference scores
(`games.REFERENCE_SCORES`): 0 is random play, 100 is human. The paper prints
these in percent for both suites (Tables 3 and 4), and `dmlab30` uses the
same convention. Papers report the median and the mean of the uncapped score
over the 57 games (IMPALA Table 4); the mean of the score capped at 100 is
the fitness of the paper's multi-task PBT (Table G.1).
"""

import math
from typing import Mapping, NamedTuple

import numpy as np

from atari57 import games as games_lib


#: Per-game cap of the capped score, in percent of human.
CAP = 100.0


class SuiteScores(NamedTuple):
  """Human-normalised scores over a set of games, in percent (100 = human)."""
  median: float
  mean: float
  capped_mean: float  # mean of min(100, score): the PBT fitness of Table G.1
  num_games: int


def normalized_score(game: str, score: float) -> float:
  """Human-normalised score of a game score, in percent: 0 = random, 100 =
  human.

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
  return 100.0 * (score - reference.random) / (reference.human -
                                               reference.random)


def suite_scores(scores_by_game: Mapping[str, float]) -> SuiteScores:
  """Median and mean human-normalised score over a set of games.

  Args:
    scores_by_game: game name -> raw game score (e.g. the evaluation mean of
      that game). Any non-empty subset of the 57 games; each game at most once.

  Returns:
    `SuiteScores` of the human-normalised scores, in percent (100 = human).
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
                     capped_mean=float(np.mean(np.minimum(values, CAP))),
                     num_games=len(values))
