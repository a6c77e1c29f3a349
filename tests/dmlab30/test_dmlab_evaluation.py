"""Test-set evaluation with a scripted policy against the fake engine."""

import pytest

import dmlab30


def test_evaluate_reports_per_level_returns_and_suite_scores(fake_lab):
  seen_first = []

  def always_forward(timestep):
    seen_first.append(timestep.first())
    return 0

  result = dmlab30.evaluate(
      always_forward,
      levels=["skymaze_irreversible_path_hard", "rooms_collect_good_objects"],
      num_episodes=2, extra_config={"fakeEpisodeFrames": "10"})
  # Forward pays +1 per frame; an episode is 10 frames.
  assert result.returns_by_level == {
      "skymaze_irreversible_path_hard": (10.0, 10.0),
      "rooms_collect_good_objects": (10.0, 10.0)}
  # skymaze hard: (10 - 0.1) / (100 - 0.1) = 9.90990...%;
  # rooms_collect_good_objects_test: (10 - 0.073) / (10 - 0.073) = 100%.
  assert result.capped_by_level["skymaze_irreversible_path_hard"] == (
      pytest.approx(9.90990990990991))
  assert result.capped_score == pytest.approx((9.90990990990991 + 100) / 2)
  assert result.uncapped_score == pytest.approx(result.capped_score)
  # 3 agent steps per episode (4 + 4 + 2 frames), a FIRST before each.
  assert seen_first == [True, False, False] * 4
  levels = [lab.fake_level for lab in fake_lab.fake_created]
  assert levels == ["contributed/dmlab30/skymaze_irreversible_path_hard",
                    "contributed/dmlab30/rooms_collect_good_objects_test"]
  for lab in fake_lab.fake_created:
    assert lab.fake_config["allowHoldOutLevels"] == "true"
    assert lab.fake_config["mixerSeed"] == str(0x600D5EED)
    assert not lab.is_running()   # closed after its level


def test_evaluate_with_custom_env_factory_and_bad_arguments(fake_lab):
  made = []

  def make_env(level):
    made.append(level)
    return dmlab30.make(level, mode="test",
                        extra_config={"fakeEpisodeFrames": "8"})

  result = dmlab30.evaluate(lambda ts: 8, levels=["rooms_watermaze"],
                            num_episodes=3, make_env=make_env)
  # Fire pays +10 per frame: 80 per 8-frame episode. rooms_watermaze has
  # human 54 and random 4.065: (80 - 4.065) / (54 - 4.065) = 152.07%.
  assert result.returns_by_level == {"rooms_watermaze": (80.0, 80.0, 80.0)}
  assert result.uncapped_score == pytest.approx(152.06768799439268)
  assert result.capped_score == 100
  assert made == ["rooms_watermaze"]
  with pytest.raises(ValueError, match="num_episodes"):
    dmlab30.evaluate(lambda ts: 0, num_episodes=0)
  with pytest.raises(ValueError, match="only used with the default make_env"):
    dmlab30.evaluate(lambda ts: 0, make_env=make_env, seed=3, dataset_path="x")
