"""Your own environment: Gymnasium by id and dm_env from a factory, the MLP
torso, and episodes cut by a time limit bootstrapped past the cut."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from impala_tf import suites
from impala_tf.acting import actor as actor_lib
from impala_tf.acting import envs
from impala_tf.agent import networks
from impala_tf.config import experiment
from impala_tf.suites import custom
from impala_tf.testing import small_envs


def test_a_truncated_episode_is_reported_with_its_last_observation():
  batch = envs.DmEnvBatch([small_envs.Countdown(3, "truncation"),
                           small_envs.Countdown(3, "termination")], 2)
  batch.reset()
  for _ in range(2):
    out = batch.step(np.zeros(2, np.int32))
    assert not out.truncated.any() and not out.done.any()
  out = batch.step(np.zeros(2, np.int32))
  # Both episodes ended; only the time limit is a truncation.
  assert out.done.tolist() == [True, True]
  assert out.truncated.tolist() == [True, False]
  # The last observation of the cut episode; the next one's first beside.
  np.testing.assert_array_equal(out.final_observation["frame"][0], [0, 1])
  np.testing.assert_array_equal(out.observation["frame"][0], [3, 1])
  assert out.episode_return.tolist() == [3.0, 3.0]


def test_gymnasium_terminated_and_truncated_keep_their_discounts():
  env = custom.GymnasiumEnv("CartPole-v1", seed=0,
                            env_kwargs={"max_episode_steps": 5})
  env.reset()
  timesteps = [env.step(0) for _ in range(5)]
  # Pushing left for 5 steps does not drop the pole: the time limit ends it.
  assert timesteps[-1].last() and timesteps[-1].discount == 1.0
  assert [t.last() for t in timesteps[:-1]] == [False] * 4
  env.close()
  env = custom.GymnasiumEnv("CartPole-v1", seed=0)
  env.reset()
  timesteps = [env.step(0) for _ in range(20)]
  ended = [t for t in timesteps if t.last()]
  # Pushing left long enough drops it: terminated, discount 0.
  assert ended and ended[0].discount == 0.0
  env.close()


def test_the_actor_bootstraps_a_truncated_episode_with_its_value():
  exp = experiment.build("dm_env", config=None, env_options={
      "env_factory": "impala_tf.testing.small_envs:countdown"})
  assert exp.config.torso == "mlp" and exp.observation_spec == {
      "frame": ((2,), np.dtype(np.float32))}
  env = envs.DmEnvBatch([small_envs.Countdown(3, "truncation"),
                         small_envs.Countdown(3, "termination")], 2)
  network = exp.make_network()
  actor = actor_lib.Actor(env, network, unroll_length=3, discount=0.9)
  trajectory = actor.unroll()
  bootstrap = trajectory["bootstrap"]
  # Step 3 (the episodes' ends): the truncated one gets 0.9 * V(its last
  # observation [0, 1]); the terminated one, and every other step, 0.
  inputs = networks.AgentInput(
      tf.constant(trajectory["prev_action"][:1, 3]), tf.constant([1.0]),
      tf.constant([False]), {"frame": tf.constant([[0.0, 1.0]])})
  value = float(network(inputs, ())[0].baseline[0])
  np.testing.assert_allclose(bootstrap[0, 3], 0.9 * value, rtol=1e-5)
  assert bootstrap[1].tolist() == [0.0] * 4
  assert bootstrap[0, :3].tolist() == [0.0] * 3


def test_the_learner_adds_the_bootstrap_to_the_clipped_reward():
  from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.testing import trajectories  # pylint: disable=g-import-not-at-top
  exp = experiment.build("dm_env", env_options={
      "env_factory": "impala_tf.testing.small_envs:countdown"})
  config = exp.config.replace(batch_size=2, unroll_length=4)
  batch = trajectories.random_batch(
      experiment.build("dm_env", config=config, env_options={
          "env_factory": "impala_tf.testing.small_envs:countdown"}).trajectory_specs(),
      exp.num_actions, 2, done_prob=0.0)
  batch["bootstrap"] = tf.zeros_like(batch["bootstrap"])
  batch["reward"] = tf.zeros_like(batch["reward"])
  losses = []
  for bootstrap in (0.0, 0.5):
    tf.random.set_seed(0)
    learner = learner_lib.Learner(config, exp.make_network,
                                  exp.observation_spec)
    changed = dict(batch, bootstrap=tf.fill(batch["bootstrap"].shape,
                                            bootstrap))
    losses.append(float(learner.update(changed)["baseline_loss"]))
  # Same weights and data but the targets: the bootstrap reached them.
  assert losses[0] != pytest.approx(losses[1])


def test_vector_observations_need_the_mlp_torso_and_images_the_others():
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="--torso=mlp"):
    experiment.build("gymnasium", ["CartPole-v1"],
                     presets.GYMNASIUM.replace(torso="shallow"))
  exp = experiment.build("gymnasium", ["CartPole-v1"])
  network = exp.make_network()
  out, _ = network(networks.dummy_input(exp.observation_spec), ())
  assert out.policy_logits.shape == (1, 2)
  names = [v.name for v in network.trainable_variables]
  assert any("mlp_torso" in n for n in names)


def test_gymnasium_images_are_made_grey_resized_and_stacked():
  env = custom.GymnasiumEnv("ALE/Pong-v5", seed=3, grey=True, resize="84x84",
                            stack=4, env_kwargs={"frameskip": 4})
  assert env.frame_stack == 4
  first = env.reset().observation
  assert first.shape == (84, 84, 4) and first.dtype == np.uint8
  assert not first[..., :3].any() and first[..., 3].any()
  second = env.step(0).observation
  # The stack moved on by one frame, as the trajectories' encoding needs.
  np.testing.assert_array_equal(second[..., 2], first[..., 3])
  env.close()


def test_bad_custom_environments_are_one_clear_error():
  suite = suites.get("gymnasium")
  with pytest.raises(ValueError, match="Gymnasium has no environment"):
    suite.canonical_level("CartPoleX-v9")
  with pytest.raises(ValueError, match="continuous|Discrete|discrete"):
    custom.GymnasiumEnv("Pendulum-v1")
  with pytest.raises(ValueError, match="package.module:function"):
    custom.load_factory("nocolon")
  with pytest.raises(ValueError, match="needs --env_factory"):
    experiment.build("dm_env")
  with pytest.raises(ValueError, match="LEVEL=RANDOM:HUMAN"):
    experiment.build("gymnasium", ["CartPole-v1"],
                     env_options={"reference_scores": "CartPole-v1=x"})


def test_reference_scores_give_normalised_scores():
  exp = experiment.build("gymnasium", ["CartPole-v1"], env_options={
      "reference_scores": "CartPole-v1=20:500"})
  suite = exp.suite_object
  assert suite.normalized_score("CartPole-v1", 260.0) == pytest.approx(50.0)
  assert suite.suite_scores({"CartPole-v1": 500.0})["mean"] == pytest.approx(
      100.0)


def test_a_dm_env_factory_learns_in_threads():
  from impala_tf.roles import threads  # pylint: disable=g-import-not-at-top
  exp = experiment.build("dm_env", env_options={
      "env_factory": "impala_tf.testing.small_envs:lever",
      "env_kwargs": '{"levers": 3, "length": 10}'})
  exp = dataclasses.replace(exp, config=exp.config.replace(
      total_frames=40_000))
  result = threads.train_in_process(exp, num_actors=1, log=lambda _: None)
  # A random policy returns 10 / 3 a game; reading the cue, 10.
  assert result.mean_returns["dm_env"] > 9.0, result


@pytest.mark.slow
def test_cartpole_learns_through_the_launcher(tmp_path):
  # Processes mode: the custom suite's environments built in actor
  # processes (threads mode learns a dm_env factory above).
  result = subprocess.run(
      [sys.executable, "-m", "impala_tf.launch", "--suite=gymnasium",
       "--levels=CartPole-v1", "--total_frames=400000",
       f"--logdir={tmp_path / 'run'}", "--log_interval_s=10"],
      cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  last = result.stdout.strip().splitlines()[-1]
  assert last.startswith("Done: "), last
  final = float(last.split("CartPole-v1 ")[1].split(" ")[0])
  assert final >= 400.0, result.stdout[-3000:]


def test_a_gymnasium_atari_id_plays_the_atari57_game_frame_for_frame():
  # The same preprocessing on both sides: 4 frames a step, no sticky
  # actions, no no-op starts, the screen's own colour frames (atari57's
  # for videos). Pong's minimal action set has the same order in both.
  from atari57 import env as atari_env  # pylint: disable=g-import-not-at-top
  ours = atari_env.make_batched("pong", 1, seed=3, noop_max=0,
                                render_mode="rgb_array")
  theirs = custom.GymnasiumEnv("ALE/Pong-v5", seed=3, env_kwargs={
      "frameskip": 4, "repeat_action_probability": 0.0})
  assert theirs.num_actions == ours.num_actions == 6
  ours.reset()
  theirs.reset()
  rng = np.random.default_rng(0)
  for _ in range(200):
    action = int(rng.integers(0, 6))
    ours.step(np.array([action], np.int32))
    np.testing.assert_array_equal(theirs.step(action).observation,
                                  ours.render()[0])
  ours.close()
  theirs.close()


def test_a_gymnasium_env_that_cannot_draw_is_one_line_for_video():
  import gymnasium  # pylint: disable=g-import-not-at-top
  from impala_tf.records import video  # pylint: disable=g-import-not-at-top
  env = custom.GymnasiumEnv("CartPole-v1", seed=0, render_mode="rgb_array")
  env.reset()

  def render():  # What classic control does without pygame.
    raise gymnasium.error.DependencyNotInstalled(
        'pygame is not installed, run `pip install "gymnasium[classic-control]"`')

  env._env.render = render  # pylint: disable=protected-access
  with pytest.raises(video.VideoUnavailableError,
                     match=r"^--video: CartPole-v1 cannot draw its frames on "
                     r"this machine: pygame is not installed, run `pip install "
                     r'"gymnasium\[classic-control\]"`$'):
    env.render()
  env.close()


def test_a_dm_env_without_render_is_one_line_for_video():
  from impala_tf.records import video  # pylint: disable=g-import-not-at-top
  env = custom.DmEnvObservations(small_envs.Countdown(3, "termination"))
  with pytest.raises(video.VideoUnavailableError,
                     match=r"^--video: this dm_env environment \(Countdown\) "
                     r"has no render\(\) giving its RGB frames\.$"):
    env.render()
