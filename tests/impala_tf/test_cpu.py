"""The CPU description, the oneDNN choice per role, and oneDNN's parity with
TF's default kernels."""

import os
import subprocess
import sys

import numpy as np
import pytest

from impala_tf.runtime import cpu

_EPYC = """processor	: 0
model name	: AMD EPYC
flags		: fpu sse sse2 avx fma avx2 bmi2
"""
_SAPPHIRE_RAPIDS = """processor	: 0
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16
"""


def _info(tmp_path, text):
  path = tmp_path / "cpuinfo"
  path.write_text(text)
  return cpu.read_cpu_info(str(path))


def test_cpu_description_names_model_extensions_and_cores(tmp_path):
  epyc = _info(tmp_path, _EPYC)
  assert epyc.model == "AMD EPYC"
  assert epyc.extensions == ("AVX2", "FMA")
  assert not epyc.has_avx512 and not epyc.tf_enables_onednn
  assert epyc.describe() == (f"AMD EPYC, {os.cpu_count()} cores, AVX2 FMA "
                             "(no AVX-512)")
  xeon = _info(tmp_path, _SAPPHIRE_RAPIDS)
  assert xeon.extensions == ("AVX2", "FMA", "AVX-512", "AVX-512 VNNI",
                             "AVX-512 BF16", "AMX", "AMX BF16")
  # Each extension once, a family's parts in brackets.
  assert xeon.describe() == (f"{xeon.model}, {os.cpu_count()} cores, AVX2 "
                             "FMA AVX-512 (VNNI, BF16) AMX (BF16)")
  assert xeon.tf_enables_onednn
  assert cpu.read_cpu_info(str(tmp_path / "missing")).model == "unknown"


def test_the_learner_is_told_when_precision_and_cpu_do_not_match(tmp_path):
  epyc, xeon = _info(tmp_path, _EPYC), _info(tmp_path, _SAPPHIRE_RAPIDS)
  avx512_bf16 = _info(tmp_path, _SAPPHIRE_RAPIDS.replace(
      " amx_tile amx_bf16", ""))
  assert "emulates" in cpu.precision_note("bfloat16", epyc)
  assert "--precision=bfloat16" in cpu.precision_note("float32", xeon)
  # Where the choice suits the CPU, nothing is said.
  assert cpu.precision_note("float32", epyc) is None
  assert cpu.precision_note("bfloat16", xeon) is None
  assert cpu.precision_note("bfloat16", avx512_bf16) is None
  assert cpu.precision_note("float32", avx512_bf16) is None


@pytest.fixture
def clean_env(monkeypatch):
  monkeypatch.delenv(cpu.ONEDNN_ENV, raising=False)
  monkeypatch.delenv("IMPALA_TF_ONEDNN_CHOSEN", raising=False)


def test_auto_turns_onednn_on_in_every_role_on_an_avx2_cpu(clean_env,
                                                           tmp_path):
  epyc = _info(tmp_path, _EPYC)
  for role in ("learner", "actor"):
    for torso in ("shallow", "deep"):
      choice = cpu.configure_onednn("auto", role, torso, epyc)
      assert choice == cpu.OneDnnChoice(True, "auto")
      assert os.environ[cpu.ONEDNN_ENV] == "1"


def test_flags_set_it_and_a_users_setting_wins(clean_env, monkeypatch):
  assert cpu.configure_onednn("off", "learner") == (False, "flag")
  assert os.environ[cpu.ONEDNN_ENV] == "0"
  # Our own choice, inherited by a child, is not taken for the user's.
  assert cpu.configure_onednn("on", "actor") == (True, "flag")
  monkeypatch.setenv(cpu.ONEDNN_ENV, "0")  # The user's.
  assert cpu.configure_onednn("on", "learner") == (False, "user")
  assert os.environ[cpu.ONEDNN_ENV] == "0"
  with pytest.raises(ValueError, match="--onednn must be one of auto, on"):
    cpu.configure_onednn("yes", "learner")


_ONE_UPDATE = r"""
import sys
import numpy as np
from impala_tf.runtime import cpu
from impala_tf.runtime import tf_startup
cpu.configure_onednn(sys.argv[1], "learner")
tf = tf_startup.import_tensorflow()
from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf.agent import trajectory
from impala_tf.config import presets
from impala_tf.testing import trajectories
config = presets.ATARI.replace(batch_size=4, unroll_length=5,
                               learning_rate=1e-3)
spec = {"frame": ((84, 84, 4), np.uint8)}
tf.random.set_seed(0)
learner = learner_lib.Learner(
    config, lambda: networks.ImpalaNetwork(6, "deep", False), spec)
batch = trajectories.random_batch(trajectory.specs(5, 6, spec, False), 6, 4)
logs = learner.update(batch)
np.savez(sys.argv[2], onednn=cpu.tf_onednn_enabled(),
         total_loss=logs["total_loss"].numpy(),
         grad_norm=logs["grad_norm"].numpy(),
         **{f"w{i}": v.numpy() for i, v in enumerate(learner.variables)})
"""


def test_onednn_and_tfs_default_kernels_give_the_same_update(tmp_path):
  results = {}
  for setting in ("on", "off"):
    path = tmp_path / f"{setting}.npz"
    env = {k: v for k, v in os.environ.items() if k != cpu.ONEDNN_ENV}
    done = subprocess.run([sys.executable, "-c", _ONE_UPDATE, setting,
                           str(path)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results[setting] = dict(np.load(path))
  on, off = results["on"], results["off"]
  assert bool(on["onednn"]) and not bool(off["onednn"])  # TF's own flag.
  np.testing.assert_allclose(on["total_loss"], off["total_loss"], rtol=1e-5)
  np.testing.assert_allclose(on["grad_norm"], off["grad_norm"], rtol=1e-4)
  weights = [k for k in on if k.startswith("w")]
  assert len(weights) > 10
  for key in weights:
    # One RMSProp step of 1e-3 from the same start: float32 round-off in
    # the convolutions' sums is all that may differ.
    np.testing.assert_allclose(on[key], off[key], rtol=1e-5, atol=1e-6,
                               err_msg=key)
