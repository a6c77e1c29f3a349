"""The actor's trajectories: layout, overlap, and what the learner recomputes."""

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

from impala_tf.acting import actor as actor_lib
from impala_tf.acting import envs
from impala_tf.agent import networks
from impala_tf.agent import trajectory
from impala_tf.suites import catch

T = 7


def _actor(use_lstm, num_envs=3, seed=0):
  env = envs.DmEnvBatch([catch.Catch(seed=seed + i) for i in range(num_envs)],
                        catch.NUM_ACTIONS)
  net = networks.ImpalaNetwork(catch.NUM_ACTIONS, use_lstm=use_lstm)
  return actor_lib.Actor(env, net, T, level_ids=[0, 1, 2][:num_envs],
                         seed=seed)


@pytest.mark.parametrize("use_lstm", [True, False])
def test_trajectories_follow_the_spec(use_lstm):
  actor = _actor(use_lstm)
  trajs = actor.unroll(policy_version=5)
  assert set(trajs) == set(actor.specs)
  for name, spec in actor.specs.items():
    assert trajs[name].shape == (3, *spec.shape), name
    assert trajs[name].dtype == spec.dtype.as_numpy_dtype, name
  np.testing.assert_array_equal(trajs["policy_version"], [5, 5, 5])
  np.testing.assert_array_equal(trajs["level_id"], [0, 1, 2])
  assert trajs["done"][:, 0].all()  # The very first step starts episodes.


@pytest.mark.parametrize("use_lstm", [True, False])
def test_consecutive_unrolls_overlap_by_one_step(use_lstm):
  actor = _actor(use_lstm)
  first = actor.unroll()
  second = actor.unroll()
  for name, value in first.items():
    if trajectory.is_time_indexed(name):
      np.testing.assert_array_equal(second[name][:, 0], value[:, -1], name)


@pytest.mark.parametrize("use_lstm", [True, False])
def test_learner_recomputes_the_behaviour_logits(use_lstm):
  # With the same weights, unrolling the network over a trajectory from its
  # stored core state must give back exactly the logits the actions were
  # drawn from; otherwise V-trace corrects for a lag that is not there.
  actor = _actor(use_lstm)
  for _ in range(4):  # Episodes (length 11) end at steps 11, 22: unroll 4.
    trajs = actor.unroll()
  assert trajs["done"][:, 1:].any()
  tm = trajectory.to_time_major({k: tf.constant(v) for k, v in trajs.items()})
  inputs = networks.AgentInput(tm["prev_action"], tm["reward"], tm["done"],
                               {"frame": tm["frame"]})
  state = (snt.LSTMState(hidden=tm["core_state_h"], cell=tm["core_state_c"])
           if use_lstm else ())
  out, _ = actor.network.unroll(inputs, state)
  np.testing.assert_allclose(out.policy_logits, tm["behaviour_logits"],
                             rtol=1e-4, atol=1e-5)


def test_rewards_and_episode_returns_line_up_with_episode_ends():
  actor = _actor(False, num_envs=2)
  rewards, dones, returns = [], [], []
  for _ in range(6):
    trajs = actor.unroll()
    rewards.append(trajs["reward"][:, 1:])
    dones.append(trajs["done"][:, 1:])
    returns.append(trajs["episode_return"][:, 1:])
  rewards, dones, returns = (np.concatenate(x, axis=1)
                             for x in (rewards, dones, returns))
  # Catch pays ±1 exactly on the step that ends an episode, every 11 steps.
  np.testing.assert_array_equal(rewards != 0, dones)
  assert dones.sum(axis=1).tolist() == [42 // catch.EPISODE_LENGTH] * 2
  np.testing.assert_array_equal(returns[dones], rewards[dones])
  assert np.isnan(returns[~dones]).all()


class _RecordingEnv:
  """Wraps a batched env and keeps a copy of every frame it returns."""

  def __init__(self, env):
    self._env = env
    self.frames = []
    for name in ("num_envs", "num_actions", "observation_spec",
                 "frame_stack"):
      setattr(self, name, getattr(env, name))

  def _keep(self, out):
    self.frames.append(np.array(out.observation["frame"]))
    return out

  def reset(self):
    return self._keep(self._env.reset())

  def step(self, actions):
    return self._keep(self._env.step(actions))

  def close(self):
    self._env.close()


def test_stacked_atari_frames_are_sent_once_and_rebuilt_exactly():
  import atari57  # pylint: disable=g-import-not-at-top
  # Short games (60 agent steps) so that unrolls cross game overs (stacks
  # restart with zeros) and Breakout's life losses (`done`, stack goes on).
  env = _RecordingEnv(atari57.make_batched("breakout", 3, seed=1,
                                           max_episode_frames=240))
  net = networks.ImpalaNetwork(env.num_actions, use_lstm=False)
  actor = actor_lib.Actor(env, net, T, seed=0)
  assert "frame" not in actor.specs
  restarts = lives_lost = 0
  for u in range(12):
    trajs = actor.unroll()
    batch = trajectory.restore_frames(
        {k: tf.constant(v) for k, v in trajs.items()})
    expected = np.stack(env.frames[u * T:u * T + T + 1], axis=1)
    np.testing.assert_array_equal(batch["frame"].numpy(), expected)
    steps = (slice(None), slice(1, None))
    restarts += trajs["stack_restart"][steps].sum()
    lives_lost += (trajs["done"] & ~trajs["stack_restart"])[steps].sum()
  assert restarts >= 3 and lives_lost >= 1, (restarts, lives_lost)
  # The learner's recomputation from the rebuilt stacks matches the actor.
  tm = trajectory.to_time_major(batch)
  inputs = networks.AgentInput(tm["prev_action"], tm["reward"], tm["done"],
                               {"frame": tm["frame"]})
  out, _ = actor.network.unroll(inputs, ())
  np.testing.assert_allclose(out.policy_logits, tm["behaviour_logits"],
                             rtol=1e-4, atol=1e-5)
  env.close()


class _StackedCatch(envs.DmEnvBatch):
  """Catch frames repeated into a 2-deep "stack" that never moves on."""

  def __init__(self):
    super().__init__([catch.Catch(seed=i) for i in range(2)],
                     catch.NUM_ACTIONS)
    shape, dtype = self.observation_spec["frame"]
    self.observation_spec = {"frame": ((*shape[:2], 2), dtype)}
    self.frame_stack = 2

  def _stack(self, timesteps, *args):
    out = super()._stack(timesteps, *args)
    frame = out.observation["frame"]
    return out._replace(observation={"frame": np.concatenate([frame] * 2,
                                                             axis=-1)})


def test_a_stack_that_does_not_slide_is_refused():
  env = _StackedCatch()
  net = networks.ImpalaNetwork(catch.NUM_ACTIONS, use_lstm=False)
  actor = actor_lib.Actor(env, net, T)
  with pytest.raises(RuntimeError, match=r"neither moved on by one frame"):
    actor.unroll()
