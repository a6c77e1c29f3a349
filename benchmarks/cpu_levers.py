"""The CPU levers besides oneDNN, measured on the learner update.

Each setting runs in a fresh process (TF reads most of them once), the
settings alternate over `--rounds`, and the median update throughput of each
is printed next to the baseline (oneDNN as `--onednn`, TF's default thread
pools, no XLA, channels-last convolutions):

* `threads=I/J`: TF's intra-op and inter-op pools of I and J threads;
* `xla`: the update compiled with XLA (`jit_compile=True`);
* `nchw`: the torso's convolutions in channels-first layout (the bare
  network's forward and backward pass, against the same pass in NHWC).

  python benchmarks/cpu_levers.py [--torsos shallow,deep] [--rounds 3]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

SETTINGS = ("baseline", "threads=1/1", "threads=2/1", "threads=1/2",
            "threads=2/2", "xla", "nchw")


def _child(args):
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  cpu.configure_onednn(args.onednn, "learner")
  tf = tf_startup.import_tensorflow()
  if args.setting.startswith("threads="):
    intra, inter = map(int, args.setting.split("=")[1].split("/"))
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import sonnet as snt  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import networks  # pylint: disable=g-import-not-at-top
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import trajectory  # pylint: disable=g-import-not-at-top
  from impala_tf.testing import trajectories  # pylint: disable=g-import-not-at-top

  config = presets.ATARI.replace(torso=args.torso)
  obs_spec = {"frame": ((84, 84, 4), np.uint8)}
  frames = args.updates * config.frames_per_update
  if args.setting == "nchw" or args.setting == "nhwc":
    # The shallow torso's convolutions alone, forward and backward, in the
    # layout asked for (Sonnet's data_format); deep is analogous.
    fmt = "NCHW" if args.setting == "nchw" else "NHWC"
    conv1 = snt.Conv2D(16, 8, stride=4, padding="VALID", data_format=fmt)
    conv2 = snt.Conv2D(32, 4, stride=2, padding="VALID", data_format=fmt)
    images = tf.random.uniform([config.batch_size * 21, 84, 84, 4])
    if fmt == "NCHW":
      images = tf.transpose(images, [0, 3, 1, 2])

    @tf.function
    def step():
      with tf.GradientTape() as tape:
        out = tf.reduce_sum(conv2(tf.nn.relu(conv1(images))))
      return tape.gradient(out, conv1.trainable_variables +
                           conv2.trainable_variables)

    run = step
  else:
    learner = learner_lib.Learner(
        config, lambda: networks.ImpalaNetwork(18, config.torso, False),
        obs_spec)
    if args.setting == "xla":
      learner._update = tf.function(learner._update_fn, jit_compile=True)  # pylint: disable=protected-access
    spec = trajectory.specs(config.unroll_length, 18, obs_spec, False)
    batch = trajectories.random_batch(spec, 18, config.batch_size)
    run = lambda: learner.update(batch)
  tf.nest.map_structure(lambda x: x.numpy(), run())  # Compile.
  start = time.perf_counter()
  for _ in range(args.updates):
    result = run()
  tf.nest.map_structure(lambda x: x.numpy(), result)
  print(json.dumps({"fps": frames / (time.perf_counter() - start)}))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torsos", default="shallow,deep")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--updates", type=int, default=5)
  parser.add_argument("--onednn", default="auto")
  parser.add_argument("--settings", default=",".join(SETTINGS))
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--setting", default="baseline", help=argparse.SUPPRESS)
  parser.add_argument("--torso", default="shallow", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    _child(args)
    return
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  settings = args.settings.split(",")
  if "nchw" in settings and "nhwc" not in settings:
    settings.append("nhwc")  # Its reference.
  print(f"CPU: {cpu.read_cpu_info().describe()}; --onednn={args.onednn}; "
        f"Atari T=20, B=32; {args.rounds} rounds x {args.updates} updates; "
        "frames/s, medians", flush=True)
  for torso in args.torsos.split(","):
    results = {s: [] for s in settings}
    for _ in range(args.rounds):
      for setting in settings:
        if setting in ("nchw", "nhwc") and torso != "shallow":
          continue
        out = subprocess.run(
            [sys.executable, __file__, "--child", f"--setting={setting}",
             f"--torso={torso}", f"--updates={args.updates}",
             f"--onednn={args.onednn}"], capture_output=True, text=True)
        if out.returncode:
          results[setting].append(float("nan"))
          print(f"  {torso} {setting} failed: "
                f"{out.stderr.strip().splitlines()[-1]}", flush=True)
          continue
        results[setting].append(json.loads(out.stdout.splitlines()[-1])["fps"])
    base = statistics.median(results["baseline"])
    for setting, values in results.items():
      if not values:
        continue
      value = statistics.median(values)
      if setting == "nhwc":  # The bare convolutions: nchw's reference.
        print(f"{torso:8} {setting:12} {value:>10,.0f} f/s  (convolutions "
              "only)", flush=True)
        continue
      reference = (statistics.median(results["nhwc"]) if setting == "nchw"
                   else base)
      print(f"{torso:8} {setting:12} {value:>10,.0f} f/s  "
            f"{value / reference:.2f}x of "
            f"{'nhwc' if setting == 'nchw' else 'baseline'}", flush=True)


if __name__ == "__main__":
  main()
