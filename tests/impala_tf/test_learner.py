"""The learner update: it learns, and 2 replicas equal 1."""

import numpy as np
import pytest
import tensorflow as tf

from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf.config import presets
from impala_tf.agent import trajectory
from impala_tf.testing import trajectories

SMALL_SPEC = {"frame": ((36, 36, 3), np.uint8),
              "instruction": ((6,), np.int32)}
NUM_ACTIONS = 5


def _config(use_lstm, **changes):
  settings = dict(use_lstm=use_lstm, use_instruction=use_lstm,
                  unroll_length=6, batch_size=4, total_frames=10_000)
  settings.update(changes)
  return presets.ATARI.replace(**settings)


def _batch(config, seed=0):
  spec = trajectory.specs(config.unroll_length, NUM_ACTIONS, SMALL_SPEC,
                          config.use_lstm)
  return trajectories.random_batch(spec, NUM_ACTIONS, config.batch_size, seed)


def _learner(config, devices, seed=0, **kwargs):
  tf.random.set_seed(seed)  # The initial weights.
  return learner_lib.Learner(
      config,
      lambda: networks.ImpalaNetwork(NUM_ACTIONS, use_lstm=config.use_lstm,
                                     use_instruction=config.use_instruction),
      SMALL_SPEC if config.use_instruction else {"frame": SMALL_SPEC["frame"]},
      strategy=learner_lib.make_strategy(devices), **kwargs)


def _copy_weights(src, dst):
  """`dst` starts from `src`'s weights."""
  for a, b in zip(src.variables, dst.variables):
    b.assign(a.numpy())


def _assert_same_weights(a_learner, b_learner, atol):
  for a, b in zip(a_learner.variables, b_learner.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=atol,
                               err_msg=a.name)


@pytest.mark.parametrize("use_lstm", [True, False])
def test_updates_fit_the_baseline_and_favour_the_rewarded_action(use_lstm):
  # A bandit batch: every step ends an episode, action 0 pays +1 and every
  # other action -1, and the behaviour policy was uniform. Seeded: from
  # some initial weights 8 updates move the probability by less than 0.1.
  config = _config(use_lstm, learning_rate=5e-3, entropy_cost=0.0)
  learner = _learner(config, ["/cpu:0"])
  batch = _batch(config)
  actions = batch["prev_action"].numpy()
  batch["done"] = tf.ones_like(batch["done"])
  batch["reward"] = tf.constant(np.where(actions == 0, 1.0, -1.0), tf.float32)
  batch["behaviour_logits"] = tf.zeros_like(batch["behaviour_logits"])

  def prob_of_rewarded_action():
    tm = {k: v[:, 0] for k, v in batch.items()
          if k in ("frame", "instruction", "prev_action", "reward", "done")}
    inputs = networks.AgentInput(
        tm["prev_action"], tm["reward"], tm["done"],
        {k: tm[k] for k in ("frame", "instruction") if k in tm})
    out, _ = learner.network(inputs, learner.network.initial_state(4))
    return tf.reduce_mean(tf.nn.softmax(out.policy_logits)[:, 0]).numpy()

  before = prob_of_rewarded_action()
  # Each update's logs are the losses before it was applied.
  first = learner.update(batch)
  for _ in range(7):
    last = learner.update(batch)
  assert float(last["baseline_loss"]) < float(first["baseline_loss"])
  assert prob_of_rewarded_action() > before + 0.1
  assert int(learner.num_updates.numpy()) == 8
  assert int(learner.num_frames.numpy()) == 8 * 4 * 6 * 4


@pytest.mark.parametrize("normalize", [False, True])
def test_normalized_advantages_sum_to_zero_in_the_policy_gradient(normalize):
  # With the policy head zeroed the policy is uniform, so every
  # log pi(a_t|x_t) is -log 5 and the policy-gradient loss is
  # log 5 times the sum of the advantages: 0 once they are normalised.
  config = _config(False, normalize_advantages=normalize)
  learner = _learner(config, ["/cpu:0"])
  batch = _batch(config)
  batch["reward"] = tf.constant(
      np.random.default_rng(1).uniform(0.5, 1.5, batch["reward"].shape),
      tf.float32)
  learner.update(batch)  # Builds the network's variables.
  head = [v for v in learner.network.trainable_variables
          if "/policy_logits/" in v.name]
  assert len(head) == 2  # Its weights and bias.
  for variable in head:
    variable.assign(tf.zeros_like(variable))
  pg_loss = float(learner.update(batch)["pg_loss"])
  if normalize:
    assert abs(pg_loss) < 1e-4, pg_loss
  else:
    assert abs(pg_loss) > 1.0, pg_loss


def test_one_update_lowers_the_baseline_loss_on_a_fixed_batch():
  config = _config(False, learning_rate=1e-3)
  learner = _learner(config, ["/cpu:0"])
  batch = _batch(config)
  first = learner.update(batch)
  second = learner.update(batch)
  assert float(second["baseline_loss"]) < float(first["baseline_loss"])


def test_learning_rate_anneals_linearly_to_zero():
  config = _config(False)
  learner = _learner(config, ["/cpu:0"])
  assert float(learner.learning_rate(0)) == pytest.approx(6e-4)
  assert float(learner.learning_rate(2_500)) == pytest.approx(4.5e-4)
  assert float(learner.learning_rate(10_000)) == 0.0
  assert float(learner.learning_rate(20_000)) == 0.0


def test_anneal_frames_moves_where_the_learning_rate_reaches_zero():
  config = _config(False, anneal_frames=40_000)
  assert config.total_frames == 10_000
  learner = _learner(config, ["/cpu:0"])
  # The run's budget ends at a quarter of the way to 0.
  assert float(learner.learning_rate(10_000)) == pytest.approx(4.5e-4)
  assert float(learner.learning_rate(20_000)) == pytest.approx(3e-4)
  assert float(learner.learning_rate(40_000)) == 0.0
  with pytest.raises(ValueError, match="anneal_frames=0 must be a positive"):
    config.replace(anneal_frames=0)


@pytest.mark.parametrize("use_lstm,reduction", [(True, "sum"),
                                                (False, "mean")])
def test_two_replicas_give_the_same_update_as_one(use_lstm, reduction):
  config = _config(use_lstm, loss_reduction=reduction)
  single = _learner(config, ["/cpu:0"])
  double = _learner(config, ["/cpu:0", "/cpu:1"])
  assert double.strategy.num_replicas_in_sync == 2
  for src, dst in zip(single.variables, double.variables):
    dst.assign(src.numpy())
  batch = _batch(config, seed=1)
  logs1 = single.update(batch)
  logs2 = double.update(batch)
  # Summed in two halves instead of one: float32 rounding of a sum over
  # the batch (seen at 1.5e-5 relative).
  np.testing.assert_allclose(logs1["total_loss"], logs2["total_loss"],
                             rtol=5e-5)
  for a, b in zip(single.variables, double.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5,
                               err_msg=a.name)
    # Both replicas hold the same copy after the update. On CPU the two
    # copies were seen to differ in the last bit (one ulp of a bias), so the
    # check is to float32 rounding, not bitwise.
    copies = double.strategy.experimental_local_results(b)
    np.testing.assert_allclose(copies[0].numpy(), copies[1].numpy(),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("use_lstm,reduction,size,devices", [
    (True, "sum", 4, 1), (False, "mean", 2, 1), (False, "sum", 2, 2)])
def test_microbatches_give_the_same_update_as_the_whole_batch(
    use_lstm, reduction, size, devices):
  config = _config(use_lstm, loss_reduction=reduction, batch_size=8,
                   learner_microbatch_size=0)
  whole = _learner(config, ["/cpu:0"])
  split = _learner(config.replace(learner_microbatch_size=size),
                   [f"/cpu:{i}" for i in range(devices)])
  _copy_weights(whole, split)
  batch = _batch(config, seed=2)
  for _ in range(2):  # The second update starts from the first's weights.
    logs1 = whole.update(batch)
    logs2 = split.update(batch)
    for name in ("total_loss", "pg_loss", "baseline_loss", "entropy_loss",
                 "grad_norm", "mean_vs", "mean_rho"):
      np.testing.assert_allclose(logs1[name], logs2[name], rtol=5e-5,
                                 err_msg=name)
    _assert_same_weights(whole, split, atol=1e-5)
  # The updates moved the weights (the comparison is not of two no-ops).
  assert float(logs1["grad_norm"]) > 0


def test_the_loss_gradient_follows_tensors_read_in_place_of_the_variables():
  """The network reading other weights (`networks.reading`, as
  benchmarks/vectorised_agents.py maps over agents' weights): the loss
  gradient with respect to those tensors is the gradient at those weights,
  the instruction embedding's sparse one included."""
  config = _config(use_lstm=True)
  learner = _learner(config, ["/cpu:0"])
  other = _learner(config, ["/cpu:0"], seed=1)
  batch = _batch(config)
  entropy_cost = tf.constant(config.entropy_cost)
  gradient = lambda owner, weights: [
      tf.convert_to_tensor(g) for g in owner._part_gradients(  # pylint: disable=protected-access
          batch, weights, entropy_cost)[0]]
  own = gradient(learner, learner.variables)
  expected = gradient(other, other.variables)
  weights = [tf.identity(v) for v in other.variables]
  with networks.reading(learner.network, weights):
    swapped = gradient(learner, weights)
  for variable, a, b in zip(learner.variables, expected, swapped):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6,
                               err_msg=variable.name)
  # The two sets of weights give different gradients (not a no-op).
  assert max(float(tf.reduce_max(tf.abs(a - b)))
             for a, b in zip(own, expected)) > 1e-3


@pytest.mark.parametrize("use_lstm,size", [(True, 0), (False, 2)])
def test_ppo_clip_with_one_pass_is_the_papers_update(use_lstm, size):
  # At the first pass the ratio is 1: the clipped surrogate's gradient is
  # the policy gradient's and ρ is against the same policy.
  config = _config(use_lstm, learner_microbatch_size=size)
  plain = _learner(config, ["/cpu:0"])
  clipped = _learner(config.replace(ppo_clip=0.2), ["/cpu:0"])
  _copy_weights(plain, clipped)
  batch = _batch(config, seed=3)
  for _ in range(2):
    logs1, logs2 = plain.update(batch), clipped.update(batch)
    for name in ("baseline_loss", "entropy_loss", "grad_norm", "mean_vs",
                 "mean_rho"):
      np.testing.assert_allclose(logs1[name], logs2[name], rtol=1e-5,
                                 err_msg=name)
  _assert_same_weights(plain, clipped, atol=1e-6)
  assert float(logs1["grad_norm"]) > 0


@pytest.mark.parametrize("use_lstm,size,devices", [(True, 0, 1),
                                                   (False, 2, 2)])
def test_two_passes_are_two_updates_on_the_same_batch(use_lstm, size,
                                                      devices):
  config = _config(use_lstm, learner_microbatch_size=size)
  one = _learner(config, [f"/cpu:{i}" for i in range(devices)],
                 anneal_learning_rate=False)
  two = _learner(config.replace(passes_per_batch=2),
                 [f"/cpu:{i}" for i in range(devices)],
                 anneal_learning_rate=False)
  _copy_weights(one, two)
  batch = _batch(config, seed=4)
  first = one.update(batch)
  one.update(batch)
  logs = two.update(batch)
  _assert_same_weights(one, two, atol=1e-6)
  # One update and the batch's frames once; the logs are the first pass's.
  assert int(two.num_updates.numpy()) == 1
  assert int(two.num_frames.numpy()) == config.frames_per_update
  np.testing.assert_allclose(logs["total_loss"], first["total_loss"],
                             rtol=1e-5)
  assert bool(logs["finite"]) and "applied" not in logs


def test_the_second_clipped_pass_is_not_the_plain_second_pass():
  # From the second pass on, ρ and the ratio are against the first pass's
  # policy, so two clipped passes differ from two plain ones.
  config = _config(False, passes_per_batch=2, learning_rate=5e-3)
  plain = _learner(config, ["/cpu:0"])
  clipped = _learner(config.replace(ppo_clip=0.1), ["/cpu:0"])
  _copy_weights(plain, clipped)
  batch = _batch(config, seed=5)
  plain.update(batch)
  clipped.update(batch)
  gaps = [np.abs(a.numpy() - b.numpy()).max()
          for a, b in zip(plain.variables, clipped.variables)]
  assert max(gaps) > 1e-6


@pytest.mark.parametrize("trajectories,max_size,parts", [
    (32, 8, 4), (32, 0, 1), (32, 32, 1), (32, 12, 4), (12, 8, 2), (16, 5, 4),
    (13, 8, 13), (2, 8, 1), (1, 1, 1)])
def test_microbatches_are_the_fewest_equal_parts_within_the_size(
    trajectories, max_size, parts):
  assert learner_lib.microbatch_parts(trajectories, max_size) == parts


def test_a_negative_microbatch_size_is_refused():
  with pytest.raises(ValueError, match=r"learner_microbatch_size=-1 must be "
                     r">= 0"):
    _config(False, batch_size=8, learner_microbatch_size=-1)


def test_batch_that_does_not_split_over_replicas_is_rejected():
  config = _config(False, batch_size=3)
  learner = _learner(config, ["/cpu:0", "/cpu:1"])
  with pytest.raises(ValueError, match="split evenly"):
    learner.update(_batch(config))


@pytest.mark.parametrize("use_lstm,changes,devices", [
    (True, {}, 2),
    # Several passes: none is applied, nor counted.
    (False, {"passes_per_batch": 3, "ppo_clip": 0.2}, 1)])
def test_a_non_finite_update_is_skipped_and_reported(use_lstm, changes,
                                                     devices):
  config = _config(use_lstm, **changes)
  learner = _learner(config, [f"/cpu:{i}" for i in range(devices)])
  before = [v.numpy() for v in learner.variables]
  batch = _batch(config)
  batch["reward"] = tf.tensor_scatter_nd_update(
      batch["reward"], [[0, 1]], [float("nan")])
  logs = learner.update(batch)
  assert not bool(logs["finite"])
  assert not np.isfinite(float(logs["total_loss"]))
  for value, old in zip(learner.variables, before):
    np.testing.assert_array_equal(value.numpy(), old)
  # Not counted as an update; its frames were consumed.
  assert int(learner.num_updates.numpy()) == 0
  assert int(learner.num_frames.numpy()) == config.frames_per_update
  logs = learner.update(_batch(config, seed=2))
  assert bool(logs["finite"]) and int(learner.num_updates.numpy()) == 1


def test_the_schedule_can_be_turned_off_after_the_step_is_compiled():
  config = _config(False)  # 6e-4 over 10,000 frames; 96 frames an update.
  learner = _learner(config, ["/cpu:0"])
  assert bool(learner.anneal_learning_rate.numpy())  # A plain run anneals.
  batch = _batch(config)
  first = learner.update(batch)
  second = learner.update(batch)
  assert float(first["learning_rate"]) == pytest.approx(6e-4)
  assert float(second["learning_rate"]) == pytest.approx(6e-4 * (1 - 0.0096))
  # Off (a population member's default): the tuned rate at any frame
  # count, read by the step already traced.
  learner.anneal_learning_rate.assign(False)
  assert float(learner.update(batch)["learning_rate"]) == pytest.approx(6e-4)
  assert float(learner.learning_rate(20_000)) == pytest.approx(6e-4)
  constant = _learner(config, ["/cpu:0"], anneal_learning_rate=False)
  assert float(constant.learning_rate(5_000)) == pytest.approx(6e-4)


def test_embedding_rows_outside_the_batch_keep_their_rmsprop_state():
  # TF1's sparse RMSProp (optimizers.py) through the whole update, on two
  # replicas: the instruction embedding's rows of words no trajectory
  # holds keep their weights and their mean square of 1.
  config = _config(True)
  learner = _learner(config, ["/cpu:0", "/cpu:1"])
  (embedding,) = [v for v in learner.variables if "embed" in v.name]
  (mean_square,) = [v for v in learner.optimizer.variables
                    if "mean_square" in v.name and v.shape == embedding.shape]
  before = embedding.numpy()
  batch = _batch(config)
  learner.update(batch)
  seen = np.unique(batch["instruction"].numpy())
  unseen = np.setdiff1d(np.arange(embedding.shape[0]), seen)
  assert len(unseen) > 800 and len(seen) > 100
  for copy in learner.strategy.experimental_local_results(mean_square):
    ms = copy.numpy()
    np.testing.assert_array_equal(ms[unseen], 1.0)
    # The rows in the batch did move (decay 0.99 plus their g²).
    assert (ms[seen] != 1.0).mean() > 0.9
  for copy in learner.strategy.experimental_local_results(embedding):
    np.testing.assert_array_equal(copy.numpy()[unseen], before[unseen])
