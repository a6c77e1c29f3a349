"""Every command-line tool: bad input is one line on stderr, not a usage
screen, and exit code 2."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("tool,args,message", [
    ("launch", ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    ("ablate", ["--suite=catch", "--seed=3"], "--seed=3 is set per run by "
     "the ablation runner"),
    ("ablate", ["--suite=catch", "--variants=vtrace,nonsense"],
     "--variants ['nonsense'] unknown"),
    ("ablate", ["--suite=catch", "--batch_size=8", "--queue_capacity=4"],
     "The queue capacity (4 trajectories) is smaller than the batch size"),
    ("pbt", ["--population=2"], "--workdir=DIR is required."),
    ("evaluate", ["--no_such_flag"], "Unknown command line flag"),
    ("evaluate", [], "Give exactly one of --policy=DIR or --logdir=RUN."),
    ("export", [], "--logdir=RUN is required."),
    ("plot", [], "Give one or more run directories, or --pbt DIR."),
    ("chaos", ["unexpected"], "Unexpected arguments"),
])
def test_bad_input_to_any_tool_is_one_line(tmp_path, tool, args, message):
  module = "impala_tf.pbt" if tool == "pbt" else f"impala_tf.{tool}"
  result = subprocess.run([sys.executable, "-m", module, *args],
                          cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 2, result.stdout + result.stderr
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith(f"impala_tf.{tool}: error: ") and message in line, (
      line)
  assert not (tmp_path / "runs").exists()  # Nothing started.
