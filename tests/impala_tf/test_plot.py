"""`impala_tf.plot` and the summaries it reads: the event file holds what
the progress lines show."""

import re

import pytest

from impala_tf import plot


@pytest.mark.slow
def test_event_file_holds_what_the_progress_lines_show(trained_catch_run):
  run, lines = trained_catch_run
  scalars = plot.read_scalars(str(run))
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
    assert step == int(match.group(1).replace(",", ""))
    assert f"{fps:,.0f}" == match.group(2)
    assert f"{fill:.0%}" == match.group(3) + "%"
    assert f"{lag:.1f}" == match.group(4)
  # A return is written with every line that shows one (not "nan").
  shown = [(int(m.group(1).replace(",", "")), m.group(5)) for m in progress
           if m.group(5) != "nan"]
  assert [(step, f"{value:.2f}") for step, value in
          scalars["return/catch"]] == shown


@pytest.mark.slow
def test_plot_draws_one_curve_per_run(trained_catch_run, tmp_path):
  run, _ = trained_catch_run
  output = tmp_path / "curves.png"
  path, curves = plot.plot([str(run), str(run)], str(output),
                           labels=["first", "second"])
  assert path == str(output) and curves == 2
  assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  kind, points = plot.curve(str(run))
  assert kind.startswith("mean return")
  assert points[-1][1] >= 0.9


def test_plot_refuses_a_directory_without_summaries(tmp_path):
  with pytest.raises(ValueError, match="no return/ or score/ summaries"):
    plot.curve(str(tmp_path))
