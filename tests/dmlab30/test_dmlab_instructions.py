"""Instruction tokens: whitespace split, stable hash into 1000 buckets, padding."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dmlab30 import instructions

SENTENCE = "Pick the red object in the blue room."
# BLAKE2b-64 buckets of the words, computed once and frozen: a change here
# silently remaps every word a trained agent knows.
EXPECTED = [899, 791, 262, 1, 64, 791, 347, 6]


def test_known_instruction_tokenises_to_fixed_ids():
  tokens = instructions.tokenize(SENTENCE, max_length=10)
  assert tokens.dtype == np.int32
  assert tokens.shape == (10,)
  assert tokens.tolist() == EXPECTED + [0, 0]


def test_same_word_same_id_and_ids_within_buckets():
  tokens = instructions.tokenize(SENTENCE)
  assert tokens[1] == tokens[5]  # "the" twice
  words = [f"w{i}" for i in range(2000)]
  ids = np.array([instructions.word_id(w) for w in words])
  assert ids.min() >= 1 and ids.max() <= instructions.INSTRUCTION_BUCKETS
  assert len(set(ids.tolist())) > 800  # spread over the buckets


def test_whitespace_split_and_padding():
  assert instructions.tokenize("  Pick\tthe\nred  ", 4).tolist() == (
      EXPECTED[:3] + [0])
  assert instructions.tokenize("", 3).tolist() == [0, 0, 0]


def test_long_instruction_is_truncated():
  assert instructions.tokenize(SENTENCE, max_length=3).tolist() == EXPECTED[:3]


def test_rejects_non_string():
  with pytest.raises(TypeError, match="must be a str"):
    instructions.tokenize(b"Pick the red object")


def test_ids_are_stable_across_processes():
  code = ("import json; from dmlab30 import instructions; "
          f"print(json.dumps(instructions.tokenize({SENTENCE!r}, 8).tolist()))")
  outputs = []
  for hash_seed in ("1", "2"):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            capture_output=True, text=True, check=True)
    outputs.append(json.loads(result.stdout))
  assert outputs == [EXPECTED, EXPECTED]


def test_bucket_count_matches_the_network():
  networks = pytest.importorskip("impala_tf.agent.networks")
  assert instructions.INSTRUCTION_BUCKETS == networks.INSTRUCTION_BUCKETS
