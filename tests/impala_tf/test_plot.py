"""`impala_tf.plot` and the summaries it reads: the event file holds what
the progress lines show."""

import re

import pytest

from impala_tf.records import curves


@pytest.mark.slow
def test_event_file_holds_what_the_progress_lines_show(trained_catch_run):
  run, lines = trained_catch_run
  scalars = curves.read_scalars(str(run))
  progress = [re.search(r"^frames ([\d,]+) \| ([\d,]+) f/s .* queue (\d+)% "
                        r".* lag ([\d.]+) .* return (\S+) ", line)
              for line in lines]
  progress = [m for m in progress if m]
  assert len(progress) >= 2
  for tag in ("throughput/frames_per_s", "queue/fill", "policy_lag/mean",
              "learner/total_loss", "learner/learning_rate"):
    assert len(scalars[tag]) == len(progress), tag
  for match, (step, fps), (_, lag), (_, fill) in zip(
      progress, scalars["throughput/frames_per_s"],
      scalars["policy_lag/mean"], scalars["queue/fill"]):
    # The event file holds float32: a value the line rounds at its last
    # digit (0.65 shown as 0.7) may read back as 0.6499... and round down.
    assert step == int(match.group(1).replace(",", ""))
    assert abs(fps - float(match.group(2).replace(",", ""))) <= 0.5 + 1e-3
    assert abs(100 * fill - int(match.group(3))) <= 0.5 + 1e-3
    assert abs(lag - float(match.group(4))) <= 0.05 + 1e-6
  # A return is written with every line that shows one (not "nan").
  shown = [(int(m.group(1).replace(",", "")), m.group(5)) for m in progress
           if m.group(5) != "nan"]
  written = scalars["return/catch"]
  assert [step for step, _ in written] == [step for step, _ in shown]
  for (_, value), (_, text) in zip(written, shown):
    assert abs(value - float(text)) <= 0.005 + 1e-6


@pytest.mark.slow
def test_plot_draws_one_curve_per_run(trained_catch_run, tmp_path):
  run, _ = trained_catch_run
  output = tmp_path / "curves.png"
  path, drawn = curves.draw([str(run), str(run)], str(output),
                            labels=["first", "second"])
  assert path == str(output) and drawn == 2
  assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  kind, points = curves.curve(str(run))
  assert kind.startswith("mean return")
  assert points[-1][1] >= 0.9


def test_plot_refuses_a_directory_without_summaries(tmp_path):
  with pytest.raises(ValueError, match="no return/ or score/ summaries"):
    curves.curve(str(tmp_path))
