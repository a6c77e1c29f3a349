"""The dm_env adapter against the fake deepmind_lab."""

import dm_env
import numpy as np
import pytest

import dmlab30
from impala_tf.acting import envs

SHORT = {"fakeEpisodeFrames": 10}   # episodes of 10 engine frames


def _steps(lab):
  return [entry for entry in lab.fake_log if entry[0] == "step"]


def _resets(lab):
  return [entry for entry in lab.fake_log if entry[0] == "reset"]


def test_each_action_reaches_the_engine_as_its_vector_with_four_repeats(
    fake_lab):
  env = dmlab30.make("rooms_watermaze", seed=3)
  env.reset()
  for action in range(9):
    env.step(action)
  lab = fake_lab.fake_created[-1]
  sent = [(vector, num_steps) for _, vector, num_steps, _ in _steps(lab)]
  assert sent == [(tuple(v), 4) for v in dmlab30.ACTION_SET.tolist()]
  assert sent[6] == ((-20, 0, 0, 1, 0, 0, 0), 4)   # forward + look left


def test_reward_is_summed_over_the_four_frames(fake_lab):
  env = dmlab30.make("rooms_watermaze")
  env.reset()
  # The fake pays MOVE_BACK_FORWARD + 10 * FIRE per frame.
  assert env.step(0).reward == 4.0     # forward: 4 frames x +1
  assert env.step(1).reward == -4.0    # backward
  assert env.step(8).reward == 40.0    # fire: 4 frames x +10
  assert env.step(4).reward == 0.0     # look left
  assert isinstance(env.step(0).reward, np.float32)


def test_episode_end_is_last_step_and_next_step_starts_new_seeded_episode(
    fake_lab):
  env = dmlab30.make("rooms_watermaze", seed=7, extra_config=SHORT)
  first = env.reset()
  assert first.step_type == dm_env.StepType.FIRST
  mid1, mid2 = env.step(0), env.step(0)
  assert [mid1.step_type, mid2.step_type] == [dm_env.StepType.MID] * 2
  last = env.step(0)            # frames 9-10: the engine stops after two
  assert last.step_type == dm_env.StepType.LAST
  assert last.reward == 2.0
  assert last.discount == 0.0
  assert last.observation["frame"].shape == (72, 96, 3)
  restart = env.step(0)         # action ignored; a new episode begins
  assert restart.step_type == dm_env.StepType.FIRST
  assert restart.reward is None
  lab = fake_lab.fake_created[-1]
  seeds = [seed for _, _, seed in _resets(lab)]
  assert len(seeds) == 2 and seeds[0] != seeds[1]
  assert all(type(s) is int for s in seeds)
  assert len(_steps(lab)) == 3
  # The fake fills frames with (seed + frames since reset) % 256.
  assert restart.observation["frame"][0, 0, 0] == seeds[1] % 256


def test_seeds_differ_between_actors_and_repeat_for_the_same_seed(fake_lab):
  def first_seed(seed):
    dmlab30.make("rooms_watermaze", seed=seed).reset()
    return _resets(fake_lab.fake_created[-1])[0][2]
  assert first_seed(1) == first_seed(1)
  assert first_seed(1) != first_seed(2)


def test_observation_is_frame_and_tokenised_instruction(fake_lab):
  env = dmlab30.make("language_select_located_object", instruction_length=12,
                     extra_config={"fakeInstruction":
                                   "Pick the red object in the blue room."})
  spec = env.observation_spec()
  assert spec["frame"].shape == (72, 96, 3) and spec["frame"].dtype == np.uint8
  assert spec["instruction"].shape == (12,)
  assert spec["instruction"].dtype == np.int32
  assert env.action_spec().num_values == 9
  observation = env.reset().observation
  assert observation["frame"].shape == (72, 96, 3)
  assert observation["frame"].dtype == np.uint8
  assert observation["instruction"].tolist() == (
      [899, 791, 262, 1, 64, 791, 347, 6, 0, 0, 0, 0])
  lab = fake_lab.fake_created[-1]
  assert lab.fake_config["width"] == "96" and lab.fake_config["height"] == "72"


def test_non_language_level_has_all_padding_instruction(fake_lab):
  observation = dmlab30.make("explore_goal_locations_small").reset().observation
  assert observation["instruction"].tolist() == (
      [0] * dmlab30.INSTRUCTION_MAX_LENGTH)


def test_training_uses_train_scripts_without_hold_out_settings(fake_lab):
  dmlab30.make("rooms_collect_good_objects")
  lab = fake_lab.fake_created[-1]
  assert lab.fake_level == "contributed/dmlab30/rooms_collect_good_objects_train"
  assert "allowHoldOutLevels" not in lab.fake_config
  assert "mixerSeed" not in lab.fake_config


def test_evaluation_uses_test_scripts_hold_out_and_fixed_mixer_seed(fake_lab):
  dmlab30.make("rooms_exploit_deferred_effects", mode="test").reset()
  lab = fake_lab.fake_created[-1]
  assert lab.fake_level == (
      "contributed/dmlab30/rooms_exploit_deferred_effects_test")
  assert lab.fake_config["allowHoldOutLevels"] == "true"
  assert lab.fake_config["mixerSeed"] == "1611489005"   # 0x600D5EED


def test_test_script_refuses_to_load_in_training(fake_lab):
  with pytest.raises(RuntimeError, match="only be used during evaluation"):
    fake_lab.Lab("contributed/dmlab30/rooms_collect_good_objects_test",
                 ["RGB_INTERLEAVED"], {})


def test_dataset_path_and_renderer_are_passed(fake_lab, tmp_path):
  dmlab30.make("psychlab_continuous_recognition", dataset_path=tmp_path,
               renderer="hardware")
  lab = fake_lab.fake_created[-1]
  assert lab.fake_config["datasetPath"] == str(tmp_path)
  assert lab.fake_renderer == "hardware"


def test_runfiles_path_is_set_on_the_module(fake_lab, monkeypatch):
  monkeypatch.setattr(fake_lab, "_runfiles_path", "")
  dmlab30.make("rooms_watermaze", runfiles_path="/opt/lab/runfiles")
  assert fake_lab.runfiles_path() == "/opt/lab/runfiles"


def test_rejects_bad_action_and_unknown_level_and_mode(fake_lab):
  env = dmlab30.make("rooms_watermaze")
  env.reset()
  for bad in (9, -1, 1.5):
    with pytest.raises(ValueError, match=r"integer in \[0, 9\).*forward"):
      env.step(bad)
  with pytest.raises(ValueError, match="Valid levels: rooms_collect"):
    dmlab30.make("rooms_watermaze_large")
  with pytest.raises(ValueError, match="mode must be one of"):
    dmlab30.make("rooms_watermaze", mode="eval")


def test_close_releases_the_engine(fake_lab):
  env = dmlab30.make("rooms_watermaze")
  env.reset()
  env.close()
  lab = fake_lab.fake_created[-1]
  assert not lab.is_running()
  with pytest.raises(RuntimeError, match="closed"):
    lab.observations()


def test_batched_through_dm_env_batch(fake_lab):
  batch = envs.DmEnvBatch(
      [dmlab30.make("language_select_described_object", seed=s,
                    extra_config=SHORT) for s in (1, 2)],
      num_actions=dmlab30.NUM_ACTIONS)
  length = dmlab30.INSTRUCTION_MAX_LENGTH
  assert batch.observation_spec == {"frame": ((72, 96, 3), np.uint8),
                                    "instruction": ((length,), np.int32)}
  out = batch.reset()
  assert out.observation["instruction"].shape == (2, length)
  assert (out.observation["instruction"][:, 0] > 0).all()
  rewards = []
  for _ in range(3):
    out = batch.step(np.array([0, 8]))
    rewards.append(out.reward.tolist())
  # Forward / fire for 4 + 4 + 2 frames, the third step ends the episode.
  assert rewards == [[4, 40], [4, 40], [2, 20]]
  assert out.done.tolist() == [True, True]
  assert out.episode_return.tolist() == [10, 100]
  assert out.episode_length.tolist() == [3, 3]
  assert out.observation["frame"].shape == (2, 72, 96, 3)
  batch.close()


def test_psychlab_image_level_without_dataset_path_warns(fake_lab, caplog):
  with caplog.at_level("WARNING", logger="dmlab30.env"):
    dmlab30.make("psychlab_arbitrary_visuomotor_mapping")
    dmlab30.make("psychlab_visual_search")   # uses no images
  assert "datasetPath" not in fake_lab.fake_created[-1].fake_config
  warned = [r.getMessage() for r in caplog.records]
  assert len(warned) == 1
  assert "psychlab_arbitrary_visuomotor_mapping" in warned[0]
  assert "dataset_path" in warned[0]
