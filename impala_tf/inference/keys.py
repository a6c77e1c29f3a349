"""The inference socket's shared key (no TensorFlow: the launcher makes
one for its children)."""

import hashlib
import os
import secrets

# The shared key of the inference socket, as hex (local mode sets a fresh
# one for its children; a cluster sets it in every role's environment).
KEY_ENV = "IMPALA_TF_INFERENCE_KEY"
# Without KEY_ENV: a key every process of this project knows, which keeps
# out only what speaks another protocol; the network must be private.
_DEFAULT_KEY = hashlib.sha256(b"impala_tf inference").digest()


def from_environment() -> bytes:
  raw = os.environ.get(KEY_ENV)
  if not raw:
    return _DEFAULT_KEY
  try:
    return bytes.fromhex(raw)
  except ValueError:
    raise ValueError(f"{KEY_ENV} must be hex digits (local mode makes one "
                     f"with secrets.token_hex), got {raw[:8]!r}...") from None


def new_key() -> str:
  """A fresh key, as `KEY_ENV` holds it."""
  return secrets.token_hex(32)


