"""Tokenising DeepMind Lab's language instruction (the `INSTR` observation).

The paper's agent splits the instruction on whitespace, hashes each word into
1000 buckets and feeds the embedded words to an LSTM. Here the hashing happens
in the environment, so the network receives fixed-size integer tokens
(docs/architecture.md): token 0 is padding and word `w` becomes
`1 + stable_hash(w) % INSTRUCTION_BUCKETS`.

`stable_hash` is the first 8 bytes (little-endian) of BLAKE2b over the word's
UTF-8 bytes. Python's built-in `hash` is salted per process (PYTHONHASHSEED),
so actors in different processes would disagree on a word's id; BLAKE2b gives
the same id everywhere. (The official code used TF's Fingerprint64 buckets;
the ids differ, which only matters for reusing its trained embeddings.)
"""

import hashlib
import logging

import numpy as np

#: Number of hash buckets. Equal to `impala_tf.agent.networks.INSTRUCTION_BUCKETS`,
#: defined here too so environments need not import TensorFlow.
INSTRUCTION_BUCKETS = 1000

#: Tokens per instruction. DMLab-30 instructions are a handful of words
#: ("Pick the red object in the blue room."); longer ones are truncated.
INSTRUCTION_MAX_LENGTH = 16

_logger = logging.getLogger(__name__)


def stable_hash(word: str) -> int:
  """A 64-bit hash of `word` that is identical in every process."""
  digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
  return int.from_bytes(digest, "little")


def word_id(word: str) -> int:
  """Token id of one word, in [1, INSTRUCTION_BUCKETS]."""
  return 1 + stable_hash(word) % INSTRUCTION_BUCKETS


def tokenize(instruction: str,
             max_length: int = INSTRUCTION_MAX_LENGTH) -> np.ndarray:
  """Turns an instruction string into int32 `[max_length]` tokens.

  Words are split on whitespace (case and punctuation are kept, as in the
  official code), hashed with `word_id`, and padded with 0 at the end. Words
  beyond `max_length` are dropped, with a warning.
  """
  if not isinstance(instruction, str):
    raise TypeError(
        f"instruction must be a str (DeepMind Lab's INSTR observation), got "
        f"{type(instruction).__name__}.")
  if max_length < 1:
    raise ValueError(f"max_length must be at least 1, got {max_length}.")
  words = instruction.split()
  if len(words) > max_length:
    _logger.warning(
        "Instruction has %d words, keeping the first %d (max_length): %r",
        len(words), max_length, instruction)
    words = words[:max_length]
  tokens = np.zeros([max_length], np.int32)
  tokens[:len(words)] = [word_id(w) for w in words]
  return tokens
