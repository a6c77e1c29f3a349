"""DMLab-30: the 30 DeepMind Lab levels of the IMPALA paper.

Levels and their train/test scripts, human/random reference scores and the
human-normalised score (percent, 100 = human, as in `atari57`), the 9-action
set, a `dm_env` adapter over `deepmind_lab.Lab` with a level cache and a
test-set evaluation; `dmlab30.suite` presents it to runs as a suite. DeepMind Lab itself is built by users from its sources
(docs/dmlab30.md); `check_engine()` says how when it is missing.
"""

from dmlab30.actions import ACTION_NAMES, ACTION_SET, NUM_ACTION_REPEATS, NUM_ACTIONS
from dmlab30.cache import LevelCache
from dmlab30.engine import EngineMissingError, check_engine
from dmlab30.env import (DmLab30Env, FRAME_HEIGHT, FRAME_WIDTH, TEST_MIXER_SEED,
                         engine_config, make)
from dmlab30.evaluation import EvaluationResult, evaluate
from dmlab30.instructions import (INSTRUCTION_BUCKETS, INSTRUCTION_MAX_LENGTH,
                                  tokenize)
from dmlab30.levels import (LANGUAGE_LEVELS, LEVELS, PSYCHLAB_DATASET_LEVELS,
                            canonical_name, test_level,
                            train_level)
from dmlab30.scores import HUMAN_SCORES, RANDOM_SCORES, normalized_score, suite_score

__all__ = [
    "ACTION_NAMES", "ACTION_SET", "NUM_ACTION_REPEATS", "NUM_ACTIONS",
    "LevelCache", "EngineMissingError", "check_engine", "DmLab30Env",
    "FRAME_HEIGHT", "FRAME_WIDTH", "TEST_MIXER_SEED", "engine_config", "make",
    "EvaluationResult", "evaluate", "INSTRUCTION_BUCKETS",
    "INSTRUCTION_MAX_LENGTH", "tokenize", "LANGUAGE_LEVELS", "LEVELS",
    "PSYCHLAB_DATASET_LEVELS", "canonical_name", "test_level",
    "train_level", "HUMAN_SCORES", "RANDOM_SCORES", "normalized_score",
    "suite_score",
]
