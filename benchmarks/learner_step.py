"""Learner throughput: the full update next to the bare network, same run.

For each shape (Atari: 84x84x4, T=20, feed-forward; DMLab: 72x96x3 plus an
instruction, T=100, LSTM) and each torso (shallow, deep), prints frames per
second (4 frames per agent step) of

* the full update: network unroll, V-trace, losses, gradient clipping and
  RMSProp (`impala_tf.agent.learner.Learner.update`), and
* the bare network: the same unroll's forward and backward pass only,

measured alternately in rounds so that machine noise hits both alike, with
the median over rounds and the ratio full/bare. With several `--onednn`
or `--precision` settings, each round runs every combination in a fresh
process (TF reads the oneDNN setting once, at import), alternating, and the
table puts them side by side with each one's update speed over the first's.
`--microbatch_size 0,8` compares learner microbatching (0: the whole batch
at once; 8, the default: parts of 8 trajectories) the same way. For each
shape and torso it also prints the update's peak of live tensors (TF's
allocator statistics: the batch, the activations held for the backward
pass, the gradients), and for each setting the process's peak resident
memory (VmHWM) over all of them.

  python benchmarks/learner_step.py [--rounds 5] [--updates 5] [--batch 32]
      [--onednn auto,off] [--precision float32,bfloat16] [--shapes atari]
      [--torsos shallow,deep] [--microbatch_size 0,8]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def peak_mib():
  """This process's peak resident memory so far (VmHWM), MiB."""
  with open("/proc/self/status") as f:
    return next(int(l.split()[1]) for l in f
                if l.startswith("VmHWM:")) / 1024


def _child(args):
  """One round of every shape and torso under this process's setting;
  prints {"shape/torso": [update f/s, bare f/s]} as JSON."""
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  cpu.configure_onednn(args.onednn, "learner")
  tf = tf_startup.import_tensorflow(without_keras=True)  # As the learner.
  import numpy as np  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import networks  # pylint: disable=g-import-not-at-top
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import trajectory  # pylint: disable=g-import-not-at-top
  from impala_tf.testing import trajectories  # pylint: disable=g-import-not-at-top

  shapes = {
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

  results = {"onednn": cpu.tf_onednn_enabled()}
  for shape in args.shapes.split(","):
    base, obs_spec, num_actions = shapes[shape]
    for torso in args.torsos.split(","):
      config = base.replace(torso=torso, batch_size=args.batch,
                            precision=args.precision,
                            learner_microbatch_size=args.microbatch_size)
      learner = learner_lib.Learner(
          config, lambda c=config: networks.ImpalaNetwork(
              num_actions, c.torso, c.use_lstm, c.use_instruction,
              precision=c.precision),
          obs_spec, strategy=learner_lib.make_strategy())
      spec = trajectory.specs(config.unroll_length, num_actions, obs_spec,
                              config.use_lstm)
      batch = trajectories.random_batch(spec, num_actions, args.batch,
                                        done_prob=0.01)
      bare = bare_step_fn(learner.network, config.use_lstm)
      tf.config.experimental.reset_memory_stats("CPU:0")
      timed(learner.update, batch, 1)  # Compile.
      frames = args.updates * args.batch * config.unroll_length * 4
      update_fps = frames / timed(learner.update, batch, args.updates)
      # The update's peak of live tensors (the batch, the activations held
      # for the backward pass, the gradients), before the bare step (which
      # never splits the batch).
      tensors_mib = tf.config.experimental.get_memory_info(
          "CPU:0")["peak"] / 2**20
      timed(bare, batch, 1)
      results[f"{shape}/{torso}"] = [
          update_fps, frames / timed(bare, batch, args.updates),
          tensors_mib]
  results["peak_mib"] = peak_mib()
  print(json.dumps(results))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--updates", type=int, default=5,
                      help="updates per timed round")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--shapes", default="atari,dmlab")
  parser.add_argument("--torsos", default="shallow,deep")
  parser.add_argument("--onednn", default="auto",
                      help="comma-separated settings of --onednn to compare "
                      "(auto, on, off)")
  parser.add_argument("--precision", default="float32",
                      help="comma-separated --precision settings to compare "
                      "(float32, bfloat16)")
  parser.add_argument("--microbatch_size", default="8",
                      help="comma-separated --learner_microbatch_size "
                      "settings to compare (0: the whole batch at once)")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    args.microbatch_size = int(args.microbatch_size)
    _child(args)
    return

  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  settings = [(onednn, precision, parts)
              for onednn in args.onednn.split(",")
              for precision in args.precision.split(",")
              for parts in args.microbatch_size.split(",")]
  print(f"CPU: {cpu.read_cpu_info().describe()}; batch {args.batch}, "
        f"{args.rounds} rounds x {args.updates} updates, settings in fresh "
        "processes, alternating; frames = 4 x steps; medians", flush=True)
  rounds = {setting: [] for setting in settings}
  for _ in range(args.rounds):
    for onednn, precision, parts in settings:
      out = subprocess.run(
          [sys.executable, __file__, "--child", f"--onednn={onednn}",
           f"--precision={precision}", f"--microbatch_size={parts}",
           f"--updates={args.updates}",
           f"--batch={args.batch}", f"--shapes={args.shapes}",
           f"--torsos={args.torsos}"],
          capture_output=True, text=True, check=True)
      rounds[onednn, precision, parts].append(
          json.loads(out.stdout.strip().splitlines()[-1]))
  header = f"{'shape':6} {'torso':8}"
  for onednn, precision, parts in settings:
    enabled = rounds[onednn, precision, parts][0]["onednn"]
    label = (f"{onednn} (oneDNN {'on' if enabled else 'off'}) {precision}"
             + (" whole batch" if parts == "0" else f" parts of {parts}"))
    header += (f" | {label + ' update':>44} {'bare':>8} {'ratio':>5} "
               f"{'tensors MiB':>11}")
  print(header)
  first = settings[0]
  for key in rounds[first][0]:
    if key in ("onednn", "peak_mib"):
      continue
    shape, torso = key.split("/")
    line = f"{shape:6} {torso:8}"
    medians = {}
    for setting in settings:
      full = statistics.median(r[key][0] for r in rounds[setting])
      bare = statistics.median(r[key][1] for r in rounds[setting])
      tensors = statistics.median(r[key][2] for r in rounds[setting])
      medians[setting] = full
      line += (f" | {full:>44,.0f} {bare:>8,.0f} {full / bare:>5.2f} "
               f"{tensors:>11,.0f}")
    for setting in settings[1:]:
      line += (f" | {'/'.join(setting)} over {'/'.join(first)}: "
               f"{medians[setting] / medians[first]:.2f}x")
    print(line, flush=True)
  for setting in settings:
    peak = statistics.median(r["peak_mib"] for r in rounds[setting])
    print(f"peak resident memory of the process (all shapes and torsos), "
          f"{'/'.join(setting)}: {peak:,.0f} MiB")


if __name__ == "__main__":
  main()
