"""Messages between actors and the inference server: a JSON header and raw
array bytes (no pickle: a message can only ever become arrays and plain
values).

    4 bytes: header length H (little-endian)
    H bytes: JSON {"meta": {...}, "arrays": [[name, dtype, shape], ...]}
    the arrays' bytes, C order, one after another
"""

from __future__ import annotations

import json
import struct
from typing import Any, Mapping

import numpy as np

_LENGTH = struct.Struct("<I")
# The dtypes a message may carry (a header naming another is refused).
_DTYPES = frozenset(("uint8", "int32", "int64", "float32", "bool"))


class MessageError(ValueError):
  """A message that is not one of ours."""


def encode(meta: Mapping[str, Any],
           arrays: Mapping[str, np.ndarray]) -> bytes:
  """`meta` (JSON values) and `arrays` (name → array) as one message."""
  parts, layout = [], []
  for name, array in arrays.items():
    array = np.ascontiguousarray(array)
    if array.dtype.name not in _DTYPES:
      raise MessageError(f"array {name!r} has dtype {array.dtype.name}, a "
                         f"message carries {sorted(_DTYPES)}")
    layout.append([name, array.dtype.name, list(array.shape)])
    parts.append(array.data)
  header = json.dumps({"meta": dict(meta), "arrays": layout}).encode()
  return b"".join([_LENGTH.pack(len(header)), header, *parts])


def decode(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
  """(meta, arrays) of a message made by `encode`; the arrays are views of
  `message`'s bytes (read-only)."""
  try:
    (length,) = _LENGTH.unpack_from(message, 0)
    header = json.loads(bytes(message[_LENGTH.size:_LENGTH.size + length]))
    offset = _LENGTH.size + length
    arrays = {}
    for name, dtype, shape in header["arrays"]:
      if dtype not in _DTYPES:
        raise MessageError(f"array {name!r} has dtype {dtype}")
      count = int(np.prod(shape, dtype=np.int64))
      array = np.frombuffer(message, np.dtype(dtype), count, offset)
      arrays[name] = array.reshape(shape)
      offset += array.nbytes
    if offset != len(message):
      raise MessageError(f"{len(message) - offset} bytes after the arrays")
    return header["meta"], arrays
  except (struct.error, ValueError, KeyError, TypeError) as e:
    raise MessageError(f"not an inference message ({e})") from None
