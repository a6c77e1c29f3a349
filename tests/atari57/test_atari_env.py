"""The batched and dm_env Atari environments, on ale-py's real ROMs."""

import dm_env
import numpy as np
import pytest

import atari57
from atari57 import env as env_lib
from impala_tf.acting import envs

ASTERIX_LIVES = 3  # Asterix starts with 3 lives; random play earns 50 a hit.


def _stack(outputs):
  """Stacks a list of EnvOutputs along a new leading time axis."""
  return envs.EnvOutput(
      observation={"frame": np.stack([o.observation["frame"] for o in outputs])},
      reward=np.stack([o.reward for o in outputs]),
      done=np.stack([o.done for o in outputs]),
      episode_return=np.stack([o.episode_return for o in outputs]),
      episode_length=np.stack([o.episode_length for o in outputs]))


def _play(env, actions):
  """Steps `env` through `actions` [T, N]; returns the stacked EnvOutputs."""
  outputs = [env.step(a) for a in actions]
  return _stack(outputs)


def test_batched_env_follows_the_contract_after_reset_and_step():
  env = atari57.make_batched("pong", 3, seed=0)
  assert env.num_envs == 3
  assert env.num_actions == 6  # Pong's minimal action set
  assert env.observation_spec == {"frame": ((84, 84, 4), np.dtype(np.uint8))}
  first = env.reset()
  assert isinstance(first, envs.EnvOutput)
  frame = first.observation["frame"]
  assert frame.shape == (3, 84, 84, 4) and frame.dtype == np.uint8
  # After a reset ale-py clears the stack: only the newest frame, the last
  # channel, holds a screen. This pins the channels-last order.
  assert np.all(frame[..., :3] == 0) and np.all(frame[..., 3].max(axis=(1, 2)) > 0)
  assert first.reward.dtype == np.float32 and np.all(first.reward == 0)
  assert first.done.dtype == bool and np.all(first.done)
  assert first.episode_return.dtype == np.float32
  assert np.all(np.isnan(first.episode_return))
  assert first.episode_length.dtype == np.int32
  assert np.all(first.episode_length == 0)

  out = _play(env, np.zeros((3, 3), np.int32))
  assert out.observation["frame"].shape == (3, 3, 84, 84, 4)
  # Three steps later all four stacked frames are screens, oldest first: the
  # newest of step t is the second newest of step t + 1.
  assert np.all(out.observation["frame"][-1].max(axis=(1, 2)) > 0)
  np.testing.assert_array_equal(out.observation["frame"][1][..., 2],
                                out.observation["frame"][0][..., 3])
  assert not out.done.any()
  assert out.reward.dtype == np.float32 and out.done.dtype == bool
  assert np.all(np.isnan(out.episode_return))
  assert out.episode_length.dtype == np.int32
  env.close()


def _asterix_games(seed, **options):
  """Random play in 2 Asterix games until each has finished 2 games."""
  env = atari57.make_batched("asterix", 2, seed=seed, **options)
  env.reset()
  rng = np.random.default_rng(seed)
  outputs = []
  while (len(outputs) < 10 or
         np.min(np.sum(~np.isnan(np.stack([o.episode_return for o in outputs])),
                       axis=0)) < 2):
    outputs.append(env.step(rng.integers(0, env.num_actions, 2)))
  env.close()
  return _stack(outputs)


def test_life_loss_and_clipping_as_configured_while_score_is_the_full_game():
  # The paper's training signal: clipped rewards, a lost life ends the
  # training episode. Same seed and actions, so the emulators play the same
  # games and only this package's handling differs.
  paper = _asterix_games(seed=5, life_loss_terminal=True, clip_rewards=True)
  raw = _asterix_games(seed=5, life_loss_terminal=False, clip_rewards=False)
  np.testing.assert_array_equal(paper.observation["frame"],
                                raw.observation["frame"])
  assert raw.reward.max() == 50.0  # Asterix scores 50 a hit
  np.testing.assert_array_equal(paper.reward, np.clip(raw.reward, -1, 1))

  for i in range(2):
    ends = np.flatnonzero(~np.isnan(raw.episode_return[:, i]))
    np.testing.assert_array_equal(
        ends, np.flatnonzero(~np.isnan(paper.episode_return[:, i])))
    start = 0
    for end in ends:
      game = slice(start, end + 1)
      score = raw.episode_return[end, i]
      # The reported score is the unclipped score of the whole game, with or
      # without clipping and life-loss terminals.
      assert paper.episode_return[end, i] == score
      assert score == raw.reward[game, i].sum()
      assert score > 0 and score % 50 == 0
      assert paper.reward[game, i].sum() < score
      assert raw.episode_length[end, i] == end + 1 - start
      assert paper.episode_length[end, i] == end + 1 - start
      # A done at every lost life with life-loss terminals, only at the game
      # over without them; life-loss dones carry no episode statistics.
      assert paper.done[game, i].sum() == ASTERIX_LIVES
      assert raw.done[game, i].sum() == 1 and raw.done[end, i]
      assert np.isnan(paper.episode_return[start:end, i]).all()
      assert (paper.episode_length[start:end, i] == 0).all()
      # The game-over step returns the next game's first observation (ale-py
      # clears the stack at a reset: only the newest frame is a screen); a
      # lost life continues the game with a full stack.
      frames = paper.observation["frame"][:, i]
      assert np.all(frames[end][..., :3] == 0)
      for life_loss in np.flatnonzero(paper.done[start:end, i]) + start:
        assert np.all(frames[life_loss].max(axis=(0, 1)) > 0)
      start = end + 1


def _space_invaders_run(seed, **options):
  env = atari57.make_batched("space_invaders", 2, seed=seed, **options)
  actions = np.random.default_rng(0).integers(0, env.num_actions, (150, 2))
  first = env.reset().observation["frame"]
  out = _play(env, actions)
  env.close()
  return first, out


def test_same_seed_same_games_and_different_seeds_differ():
  for options in ({}, {"repeat_action_probability": 0.25}):
    first_a, run_a = _space_invaders_run(11, **options)
    first_b, run_b = _space_invaders_run(11, **options)
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(run_a.observation["frame"],
                                  run_b.observation["frame"])
    np.testing.assert_array_equal(run_a.reward, run_b.reward)
    assert run_a.reward.sum() > 0
    _, run_c = _space_invaders_run(12, **options)
    assert not np.array_equal(run_a.observation["frame"],
                              run_c.observation["frame"])
    # The environments of one batch play independent games too.
    assert not np.array_equal(run_a.observation["frame"][:, 0],
                              run_a.observation["frame"][:, 1])


def test_episode_cap_truncates_and_reports_the_game():
  # 400 frames are 100 agent steps; random Pong cannot end sooner.
  env = atari57.make_batched("pong", 2, seed=0, max_episode_frames=400)
  env.reset()
  out = _play(env, np.ones((101, 2), np.int32))
  ended = ~np.isnan(out.episode_return)
  np.testing.assert_array_equal(np.flatnonzero(ended[:, 0]), [99])
  np.testing.assert_array_equal(out.done[:, 0], ended[:, 0])
  assert (out.episode_length[99] == 100).all()
  env.close()


def test_dm_env_episode_is_one_whole_game_with_life_loss_cuts():
  env = atari57.make("Asterix", seed=3)
  assert env.observation_spec().shape == (84, 84, 4)
  assert env.observation_spec().dtype == np.uint8
  assert env.action_spec().num_values == 9
  timestep = env.reset()
  assert timestep.first() and timestep.observation.shape == (84, 84, 4)
  assert env.lives == ASTERIX_LIVES
  rng = np.random.default_rng(3)
  rewards, cuts = [], 0
  while not timestep.last():
    timestep = env.step(int(rng.integers(env.num_actions)))
    rewards.append(timestep.reward)
    cuts += (timestep.mid() and timestep.discount == 0.0)
  assert timestep.discount == 0.0  # a game over, not a truncation
  # The last observation is the ended game's (a full stack), not the first of
  # the next game that ale-py has already started (a cleared stack).
  assert timestep.observation.shape == (84, 84, 4)
  assert np.all(timestep.observation.max(axis=(0, 1)) > 0)
  assert cuts == ASTERIX_LIVES - 1
  assert env.episode_return == sum(rewards) > 0
  assert env.episode_length == len(rewards)
  assert env.step(0).first()  # dm_env: a step after LAST starts a new game
  assert env.episode_return == 0.0 and env.lives == ASTERIX_LIVES
  env.close()


def test_dm_env_clips_rewards_but_keeps_the_score():
  env = atari57.make("asterix", seed=3, clip_rewards=True)
  timestep = env.reset()
  rng = np.random.default_rng(3)
  rewards = []
  while not timestep.last():
    timestep = env.step(int(rng.integers(env.num_actions)))
    rewards.append(timestep.reward)
  assert set(rewards) <= {0.0, 1.0}
  assert env.episode_return == 50 * sum(rewards)
  env.close()


def test_dm_env_truncation_has_discount_one():
  env = atari57.make("pong", seed=0, max_episode_frames=200)
  env.reset()
  steps = [env.step(0) for _ in range(50)]
  assert [t.last() for t in steps] == [False] * 49 + [True]
  assert steps[-1].discount == 1.0
  assert steps[-1].step_type == dm_env.StepType.LAST
  env.close()


def test_full_action_set_has_18_actions_even_where_ale_py_has_fewer():
  # ale-py 0.12.1 gives skiing 9 "legal" actions (no FIRE); the full set
  # still has 18, a FIRE combination playing as the same move without FIRE.
  env = atari57.make_batched("Skiing", 1, seed=4, full_action_space=True)
  assert env.num_actions == atari57.FULL_ACTION_SET_SIZE == 18
  assert env.action_names[13] == "DOWNFIRE" and env.action_names[5] == "DOWN"
  env.reset()
  with_fire = _play(env, np.full((40, 1), 13))
  env.close()
  env = atari57.make_batched("Skiing", 1, seed=4, full_action_space=True)
  env.reset()
  without_fire = _play(env, np.full((40, 1), 5))
  env.close()
  np.testing.assert_array_equal(with_fire.observation["frame"],
                                without_fire.observation["frame"])
  # And the full set of a game whose ROM uses all 18 is ale-py's own.
  env = atari57.make_batched("pong", 1, full_action_space=True)
  assert env.num_actions == 18
  env.close()


def test_bad_actions_and_options_are_rejected_with_what_is_accepted():
  env = atari57.make_batched("pong", 2)
  with pytest.raises(RuntimeError, match="before reset"):
    env.step(np.zeros(2, np.int32))
  env.reset()
  with pytest.raises(ValueError, match=r"shape \[2\]"):
    env.step(np.zeros(3, np.int32))
  with pytest.raises(ValueError, match=r"in \[0, 6\)"):
    env.step(np.array([0, 6]))
  env.close()
  with pytest.raises(ValueError, match="repeat_action_probability must be in"):
    atari57.make_batched("pong", 1, repeat_action_probability=1.5)
  with pytest.raises(TypeError, match="unexpected keyword"):
    atari57.make("pong", episodic_life=True)


def test_game_over_is_told_from_life_loss_terminals():
  # ale-py's SAME_STEP reports a life loss and a game over (after which it
  # has already reset the game) both as terminated=True; columns:
  # life loss (3 -> 2 lives, frames advance), game over with a reset to 3
  # lives, game over after a bonus life (4 -> 3 lives, the new game's start,
  # caught by the frame number restarting), Pong without lives, a truncation,
  # an ordinary step.
  game_over = env_lib._game_over(  # pylint: disable=protected-access
      terminated=np.array([True, True, True, True, False, False]),
      truncated=np.array([False, False, False, False, True, False]),
      lives=np.array([2, 3, 3, 0, 2, 3]),
      previous_lives=np.array([3, 1, 4, 0, 2, 3]),
      frame_number=np.array([104, 12, 17, 5, 3, 204]),
      previous_frame_number=np.array([100, 500, 900, 1000, 108000, 200]))
  np.testing.assert_array_equal(game_over,
                                [False, True, True, True, True, False])


def test_colour_frames_for_videos_show_the_game_the_agent_plays():
  # A second emulator with the same seed and actions, in full colour: its
  # frame, made grey and small, is the agent's newest frame.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  env = atari57.make_batched("pong", 2, seed=3, render_mode="rgb_array")
  out = env.reset()
  rng = np.random.default_rng(0)
  for _ in range(60):
    out = env.step(rng.integers(0, env.num_actions, 2).astype(np.int32))
  colour = env.render()
  assert colour.shape == (2, 210, 160, 3) and colour.dtype == np.uint8
  for i in range(2):
    grey = (colour[i].astype(np.float32) @ np.array([0.299, 0.587, 0.114])
            ).astype(np.uint8)
    small = np.asarray(Image.fromarray(grey).resize((84, 84)), np.float64)
    newest = out.observation["frame"][i, ..., -1].astype(np.float64)
    assert np.corrcoef(small.ravel(), newest.ravel())[0, 1] > 0.99
  env.close()
  with pytest.raises(ValueError, match="render_mode"):
    atari57.make_batched("pong", 1, render_mode="human")
