"""The CPU a process runs on, and TensorFlow's CPU kernel library per role.

TensorFlow 2.21's x86 wheels carry two kernel libraries for convolutions and
matrix products: Eigen (the default) and oneDNN. TF turns oneDNN on by itself
only on CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX; elsewhere (AVX2-only
CPUs, including AMD EPYCs without AVX-512) it stays off unless
`TF_ENABLE_ONEDNN_OPTS=1`, which TF reads once, when it is imported. Every
process of this project therefore decides before importing TF
(`configure_onednn`), per role, from `--onednn=auto|on|off`:

* `on` / `off`: as asked;
* `auto`: on, in every role. On an AVX2-only CPU (AMD EPYC, 2 cores) oneDNN
  made the learner's update 2.2 (deep) to 2.7 (shallow) times as fast, and
  the actors' batch-16 inference in one thread 1.3 (shallow) to 1.6 (deep)
  times; where TF enables oneDNN by itself, `auto` is what TF does anyway.
  docs/benchmarks.md has the measurements behind the rule; `auto_onednn`
  is where a role or CPU class that measures otherwise would go.

A `TF_ENABLE_ONEDNN_OPTS` the user set is always respected.
"""

import dataclasses
import os
from typing import NamedTuple, Optional

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
SETTINGS = ("auto", "on", "off")
# Set in a process where this module chose TF_ENABLE_ONEDNN_OPTS, so a child
# that inherits the environment does not take the choice for the user's.
_CHOSEN_ENV = "IMPALA_TF_ONEDNN_CHOSEN"

# /proc/cpuinfo flag -> the name people know, in the order they are shown.
_EXTENSIONS = (
    ("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512"),
    ("avx512_vnni", "AVX-512 VNNI"), ("avx512_bf16", "AVX-512 BF16"),
    ("avx_vnni", "AVX-VNNI"), ("amx_tile", "AMX"), ("amx_bf16", "AMX BF16"),
)
# With any of these TF 2.21 enables oneDNN by default (its
# `IsMklEnabled()` default on x86 Linux).
_TF_ONEDNN_DEFAULT_FLAGS = frozenset(
    {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16",
     "amx_int8"})


@dataclasses.dataclass(frozen=True)
class CpuInfo:
  """What `/proc/cpuinfo` says about this machine's CPU."""
  model: str
  flags: frozenset
  cores: int

  @property
  def extensions(self) -> tuple[str, ...]:
    """The vector extensions that matter here, by their usual names."""
    return tuple(name for flag, name in _EXTENSIONS if flag in self.flags)

  @property
  def has_avx512(self) -> bool:
    return "avx512f" in self.flags

  @property
  def tf_enables_onednn(self) -> bool:
    """Whether TF turns oneDNN on by itself on this CPU."""
    return bool(self.flags & _TF_ONEDNN_DEFAULT_FLAGS)

  def describe(self) -> str:
    """E.g. "AMD EPYC, 2 cores, AVX2 FMA (no AVX-512)", or "..., AVX2 FMA
    AVX-512 (VNNI, BF16) AMX (BF16)": each extension named once, with the
    parts of a family in brackets."""
    words, families = [], {}
    for name in self.extensions:
      family, _, part = name.partition(" ")
      if part and family in families:
        families[family].append(part)
      else:
        families[name] = []
        words.append(name)
    text = " ".join(
        f"{w} ({', '.join(families[w])})" if families[w] else w
        for w in words) or "no AVX2"
    if not self.has_avx512:
      text += " (no AVX-512)"
    return f"{self.model}, {self.cores} cores, {text}"


def precision_note(precision: str, info: CpuInfo) -> Optional[str]:
  """A line for the learner's start when `--precision` and this CPU do not
  match well (docs/benchmarks.md), else None: bfloat16 without bfloat16
  instructions is emulated and several times slower; float32 on a CPU
  with AMX leaves most of its speed unused."""
  native = bool(info.flags & {"avx512_bf16", "amx_bf16"})
  if precision == "bfloat16" and not native:
    return ("this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX): "
            "TF emulates them, and --precision=bfloat16 runs several times "
            "slower than float32 (0.14x measured on AVX2).")
  if precision == "float32" and "amx_bf16" in info.flags:
    return ("this CPU has AMX: --precision=bfloat16 updated the network "
            "1.4x (shallow) to 2.2x (deep) as fast as float32 on such a CPU "
            "(docs/benchmarks.md; learning parity in docs/results.md).")
  return None


def read_cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
  """This machine's `CpuInfo` (model "unknown" where the file is missing)."""
  model, flags = "unknown", frozenset()
  try:
    with open(path) as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
          model = value.strip()
        elif key == "flags" and not flags:
          flags = frozenset(value.split())
  except OSError:
    pass  # Not Linux: no model, no flags; the rules below still apply.
  return CpuInfo(model, flags, os.cpu_count() or 1)


def auto_onednn(role: str, torso: str, info: CpuInfo) -> bool:
  """The `auto` rule of the module docstring: on for every role, torso and
  x86 CPU class measured so far."""
  del role, torso, info
  return True


class OneDnnChoice(NamedTuple):
  """What a process runs with, and why ("user", "flag" or "auto")."""
  enabled: bool
  source: str


def _truthy(value: str) -> bool:
  return value.strip().lower() in ("1", "true", "yes", "on")


def configure_onednn(setting: str, role: str, torso: str = "shallow",
                     info: Optional[CpuInfo] = None) -> OneDnnChoice:
  """Sets `TF_ENABLE_ONEDNN_OPTS` for this process (call it before TF is
  imported) unless the user set it; returns the choice."""
  if setting not in SETTINGS:
    raise ValueError(f"--onednn must be one of {', '.join(SETTINGS)}, got "
                     f"{setting!r}.")
  user_value = os.environ.get(ONEDNN_ENV)
  if user_value is not None and os.environ.get(_CHOSEN_ENV) != user_value:
    return OneDnnChoice(_truthy(user_value), "user")
  if setting == "auto":
    enabled = auto_onednn(role, torso, info or read_cpu_info())
  else:
    enabled = setting == "on"
  value = "1" if enabled else "0"
  os.environ[ONEDNN_ENV] = value
  os.environ[_CHOSEN_ENV] = value
  return OneDnnChoice(enabled, "auto" if setting == "auto" else "flag")


def tf_onednn_enabled() -> bool:
  """TensorFlow's own answer (imports TF): are its oneDNN kernels on?"""
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  return bool(_pywrap_util_port.IsMklEnabled())
