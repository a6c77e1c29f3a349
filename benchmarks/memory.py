"""Where a run's memory goes: each process role built up stage by stage.

For the actor (Pong, `--envs_per_actor` environments) and the learner
(Atari shapes, T=20, batch 32), in a fresh process each, prints after every
stage the resident memory (RSS), its private anonymous part (what each
process pays alone: heap, Python objects, activations) and its file-backed
part (shared libraries, shared between processes, so whole-run PSS counts
it about once), with the change from the stage before:

  actor:   Python; TF imported (with or without Keras 3, as the launcher
           starts it); the environments; the network; the first unroll
           (inference traced); 20 more unrolls
  learner: Python; TF imported; learner built (network, RMSProp slots,
           tensorflow-probability); a batch in memory; the first update
           (compiled: the activations held for the backward pass); 5 more

Memory figures do not depend on CPU load, so this can run next to other
jobs (unlike the speed benchmarks).

  python benchmarks/memory.py [--torsos shallow,deep] [--microbatch_size 0,8]
      [--keras without,with] [--precision float32]
"""

import argparse
import json
import subprocess
import sys


def _usage():
  """{"rss", "anon", "file"} MiB of this process now."""
  fields = {"Rss:": "rss", "Anonymous:": "anon"}
  out = {}
  with open("/proc/self/smaps_rollup") as f:
    for line in f:
      parts = line.split()
      if parts[0] in fields:
        out[fields[parts[0]]] = int(parts[1]) / 1024
  out["file"] = out["rss"] - out["anon"]
  return out


def _child(args):
  stages = [("Python", _usage())]
  from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
  tf = tf_startup.import_tensorflow(without_keras=args.keras == "without")
  tf.constant(1.0) + 1.0  # pylint: disable=expression-not-assigned
  stages.append((f"TF imported ({args.keras} Keras 3)", _usage()))
  from impala_tf.config import experiment  # pylint: disable=g-import-not-at-top
  from impala_tf.config import presets  # pylint: disable=g-import-not-at-top
  config = presets.ATARI.replace(torso=args.torso, precision=args.precision,
                                 learner_microbatch_size=args.microbatch_size)
  exp = experiment.build("atari57", ["pong"], config=config,
                         envs_per_actor=args.envs_per_actor)
  if args.role == "actor":
    from impala_tf.acting import actor as actor_lib  # pylint: disable=g-import-not-at-top
    from impala_tf.acting import actor_loop  # pylint: disable=g-import-not-at-top
    env = exp.make_env(0, seed=0)
    stages.append((f"{args.envs_per_actor} Pong environments", _usage()))
    network = actor_loop.build_actor_network(exp)
    stages.append(("network built", _usage()))
    actor = actor_lib.Actor(env, network, config.unroll_length,
                            level_ids=exp.level_ids(0))
    actor.unroll()
    stages.append(("first unroll (inference traced)", _usage()))
    for _ in range(20):
      actor.unroll()
    stages.append(("20 more unrolls", _usage()))
    env.close()
  else:
    from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
    from impala_tf.agent import trajectory  # pylint: disable=g-import-not-at-top
    from impala_tf.testing import trajectories  # pylint: disable=g-import-not-at-top
    learner = learner_lib.Learner(config, exp.make_network,
                                  exp.observation_spec)
    stages.append(("learner built (network, RMSProp, tfp)", _usage()))
    batch = trajectory.restore_frames(trajectories.random_batch(
        exp.trajectory_specs(), exp.num_actions, config.batch_size,
        done_prob=0.0))
    stages.append(("one batch in memory", _usage()))
    learner.update(batch)["total_loss"].numpy()
    stages.append(("first update (compiled)", _usage()))
    for _ in range(5):
      learner.update(batch)["total_loss"].numpy()
    stages.append(("5 more updates", _usage()))
  print(json.dumps(stages))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torsos", default="shallow,deep")
  parser.add_argument("--roles", default="actor,learner")
  parser.add_argument("--microbatch_size", default="8",
                      help="comma-separated --learner_microbatch_size "
                      "settings (0: the whole batch at once)")
  parser.add_argument("--keras", default="without",
                      help="comma-separated: without (as the launcher), with")
  parser.add_argument("--precision", default="float32")
  parser.add_argument("--envs_per_actor", type=int, default=16)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--role", help=argparse.SUPPRESS)
  parser.add_argument("--torso", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    args.microbatch_size = int(args.microbatch_size)
    _child(args)
    return
  from impala_tf.runtime import cpu  # pylint: disable=g-import-not-at-top
  print(f"CPU: {cpu.read_cpu_info().describe()}; MiB; each role and "
        "setting in a fresh process")
  for role in args.roles.split(","):
    for torso in args.torsos.split(","):
      for keras in args.keras.split(","):
        parts_settings = (args.microbatch_size.split(",") if role == "learner"
                          else ["1"])
        for parts in parts_settings:
          out = subprocess.run(
              [sys.executable, __file__, "--child", f"--role={role}",
               f"--torso={torso}", f"--keras={keras}",
               f"--microbatch_size={parts}", f"--precision={args.precision}",
               f"--envs_per_actor={args.envs_per_actor}"],
              capture_output=True, text=True, check=True)
          stages = json.loads(out.stdout.strip().splitlines()[-1])
          title = f"{role}, {torso}, {args.precision}, {keras} Keras 3"
          if role == "learner":
            title += (", whole batch" if parts == "0" else f", parts of {parts}")
          print(f"\n{title}")
          print(f"  {'stage':42} {'RSS':>7} {'private':>8} {'files':>7} "
                f"{'private +':>10}")
          before = None
          for name, usage in stages:
            delta = ("" if before is None else
                     f"{usage['anon'] - before['anon']:+10,.0f}")
            print(f"  {name:42} {usage['rss']:7,.0f} {usage['anon']:8,.0f} "
                  f"{usage['file']:7,.0f} {delta:>10}")
            before = usage


if __name__ == "__main__":
  main()
