"""Learner throughput: the full update next to the bare network, same run.

For each shape (Atari: 84x84x4, T=20, feed-forward; DMLab: 72x96x3 plus an
instruction, T=100, LSTM) and each torso (shallow, deep), prints frames per
second (4 frames per agent step) of

* the full update: network unroll, V-trace, losses, gradient clipping and
  RMSProp (`impala_tf.learner.Learner.update`), and
* the bare network: the same unroll's forward and backward pass only,

measured alternately in rounds so that machine noise hits both alike, with
the median over rounds and the ratio full/bare.

  python benchmarks/learner_step.py [--rounds 5] [--updates 5] [--batch 32]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from impala_tf import learner as learner_lib
from impala_tf import networks
from impala_tf import presets
from impala_tf import trajectory
from impala_tf.testing import trajectories

SHAPES = {
    "atari": (presets.ATARI, {"frame": ((84, 84, 4), np.uint8)}, 18),
    "dmlab": (presets.DMLAB30, {"frame": ((72, 96, 3), np.uint8),
                                "instruction": ((16,), np.int32)}, 9),
}


def bare_step_fn(network, use_lstm):
  """Forward and backward through the unroll, nothing else."""

  @tf.function
  def step(batch):
    tm = trajectory.to_time_major(batch)
    inputs = networks.AgentInput(
        tm["prev_action"], tm["reward"], tm["done"],
        {k: tm[k] for k in trajectory.observation_names(tm)})
    state = (network.initial_state(tf.shape(tm["reward"])[1])
             if use_lstm else ())
    with tf.GradientTape() as tape:
      out, _ = network.unroll(inputs, state)
      loss = tf.reduce_sum(out.policy_logits) + tf.reduce_sum(out.baseline)
    return tape.gradient(loss, network.trainable_variables)

  return step


def timed(fn, batch, repeats):
  start = time.perf_counter()
  for _ in range(repeats):
    result = fn(batch)
  # Embedding gradients come back as IndexedSlices.
  tf.nest.map_structure(lambda x: tf.convert_to_tensor(x).numpy(), result)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--updates", type=int, default=5,
                      help="updates per timed round")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--shapes", default="atari,dmlab")
  parser.add_argument("--torsos", default="shallow,deep")
  args = parser.parse_args()

  print(f"TF {tf.__version__}, {os.cpu_count()} CPUs, batch {args.batch}, "
        f"{args.rounds} rounds x {args.updates} updates; frames = 4 x steps")
  print(f"{'shape':6} {'torso':8} {'T':>4} {'update f/s':>11} "
        f"{'bare net f/s':>13} {'ratio':>6}")
  for shape in args.shapes.split(","):
    base, obs_spec, num_actions = SHAPES[shape]
    for torso in args.torsos.split(","):
      config = base.replace(torso=torso, batch_size=args.batch)
      learner = learner_lib.Learner(
          config, lambda c=config: networks.ImpalaNetwork(
              num_actions, c.torso, c.use_lstm, c.use_instruction),
          obs_spec, strategy=learner_lib.make_strategy())
      spec = trajectory.specs(config.unroll_length, num_actions, obs_spec,
                              config.use_lstm)
      batch = trajectories.random_batch(spec, num_actions, args.batch,
                                        done_prob=0.01)
      bare = bare_step_fn(learner.network, config.use_lstm)
      timed(learner.update, batch, 1)  # Compile.
      timed(bare, batch, 1)
      frames = args.updates * args.batch * config.unroll_length * 4
      full_fps, bare_fps = [], []
      for _ in range(args.rounds):
        full_fps.append(frames / timed(learner.update, batch, args.updates))
        bare_fps.append(frames / timed(bare, batch, args.updates))
      full, net = statistics.median(full_fps), statistics.median(bare_fps)
      print(f"{shape:6} {torso:8} {config.unroll_length:>4} {full:>11,.0f} "
            f"{net:>13,.0f} {full / net:>6.2f}", flush=True)


if __name__ == "__main__":
  main()
