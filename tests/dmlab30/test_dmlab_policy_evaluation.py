"""An exported DMLab-30 policy evaluated by `impala_tf.evaluate` with the
suite's protocol, against the fake engine."""


from impala_tf.records import evaluation
from impala_tf.config import experiment
from impala_tf.records import saved_policy
from impala_tf.agent import networks
from impala_tf.config import presets


def test_evaluation_plays_the_test_levels_with_the_fixed_mixer_seed(
    fake_lab, tmp_path):
  exp = experiment.build(
      "dmlab30", ["rooms_collect_good_objects", "rooms_watermaze"],
      presets.DMLAB_SINGLE_TASK.replace(torso="shallow"),
      env_options={"extra_config": {"fakeEpisodeFrames": "12"}})
  network = exp.make_network()
  network(networks.dummy_input(exp.observation_spec), network.initial_state(1))
  saved_policy.export_policy(exp, network.trainable_variables, 0,
                       str(tmp_path / "policy"))
  fake_lab.fake_created.clear()
  report = evaluation.evaluate(evaluation.Policy(str(tmp_path / "policy")),
                             episodes=5, num_envs=2, show_progress=False)
  assert list(report["levels"]) == ["rooms_collect_good_objects",
                                    "rooms_watermaze"]
  for result in report["levels"].values():
    assert result["episodes"] == 5 and result["normalized_score"] is not None
  assert set(report["suite_scores"]) == {"mean", "median", "capped_mean"}
  # Two environments per level, each a test-mode Lab.
  levels = [lab.fake_level for lab in fake_lab.fake_created]
  assert levels == (
      ["contributed/dmlab30/rooms_collect_good_objects_test"] * 2 +
      ["contributed/dmlab30/rooms_watermaze"] * 2)
  for lab in fake_lab.fake_created:
    assert lab.fake_config["allowHoldOutLevels"] == "true"
    assert lab.fake_config["mixerSeed"] == str(0x600D5EED)
