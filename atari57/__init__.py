"""Atari-57: the games, human-normalised scores, and environments on ale-py.

Public names:
  GAMES: the 57 canonical game names (ale-py ROM names, snake_case).
  canonical_name(game): accepts "space_invaders", "SpaceInvaders",
    "spaceinvaders"; unknown names raise ValueError with the closest names.
  normalized_score(game, score): human-normalised score in percent, 100 =
    human.
  suite_scores(scores_by_game): SuiteScores(median, mean, capped_mean, ...),
    in percent.
  make(game, seed=0, **options): one game as a dm_env.Environment.
  make_batched(game, num_envs, seed=0, **options): N games as an
    impala_tf.acting.envs.BatchedEnv for actors.
  evaluate(game, policy, num_episodes=200, ...): the paper's protocol.
"""

from atari57.env import (ACTION_REPEAT, FRAME_SHAPE, FULL_ACTION_SET_SIZE,
                         AtariBatchedEnv, AtariEnvironment, AtariOptions, make,
                         make_batched)
from atari57.evaluation import EvaluationResult, Policy, evaluate
from atari57.games import GAMES, REFERENCE_SCORES, ReferenceScores, canonical_name
from atari57.scores import SuiteScores, normalized_score, suite_scores

__all__ = [
    "ACTION_REPEAT", "FRAME_SHAPE", "FULL_ACTION_SET_SIZE", "AtariBatchedEnv",
    "AtariEnvironment", "AtariOptions", "EvaluationResult", "GAMES", "Policy",
    "REFERENCE_SCORES", "ReferenceScores", "SuiteScores", "canonical_name",
    "evaluate", "make", "make_batched", "normalized_score", "suite_scores",
]
