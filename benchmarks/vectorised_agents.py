"""Several agents' loss gradients: one after another in one program (what
`python -m impala_tf.anakin.together` runs) against one set of wider
kernels, `tf.vectorized_map` over the agents' weights stacked (what
`jax.vmap` does for the Podracer report's many seeds).

For each network (`--networks`: `mlp`, the gymnasium suite's CartPole-v1
agent; `shallow`, the Catch agent) and each count of agents (`--agents`),
it builds that many learners (their own weights and seeds), one batch of
trajectories each from its anakin unroll, and two programs that compute
every agent's gradient with the learner's own loss
(`Learner._part_gradients`: the network unrolled, V-trace, the losses,
backpropagation):

* one after another: every agent's gradient in one `tf.function`, the
  agents' ops side by side in its graph;
* vectorised: `tf.vectorized_map` over the agents' weights, stacked
  `[agents, ...]`, and their batches, the network called with one agent's
  weights through Sonnet's custom variable getter.

It checks that both give every agent the same gradient, then times them
alternating, `--repeats` times `--calls` calls each, and prints
milliseconds per call (medians), the vectorised program's speed against
the other's and the largest difference of the gradients. `--xla` also
compiles each program with XLA. Where TensorFlow refuses a program it
prints why in one line and goes on. For the shallow torso's convolutions,
which `tf.vectorized_map` refuses with one filter per agent, it then times
the first two layers' convolutions at the learner's batch both ways: one
per agent, and one grouped convolution (the agents' filters side by side,
one group each), the kernel a vectorised shallow network would call.

With `--iterations` it times what runs trained together execute instead:
whole anakin iterations (every agent's unroll and update, `--calls` per
call of the compiled program), each agent's ops side by side against the
agents vectorised (`impala_tf.anakin.vectorised`: stacked weights, one
grouped convolution or batched matrix product per layer for all), and
prints milliseconds per iteration and frames/s over all agents.

  python benchmarks/vectorised_agents.py [--networks mlp,shallow]
      [--agents 1,4,8] [--repeats 5] [--calls 20] [--xla] [--iterations]
"""

import argparse
import os
import re
import statistics
import time

# TensorFlow's own log: an XLA refusal prints the whole graph's traceback.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

from impala_tf import anakin
from impala_tf.agent import learner as learner_lib
from impala_tf.agent import networks
from impala_tf.config import experiment
from impala_tf.runtime import cpu
# pylint: enable=g-import-not-at-top,wrong-import-position

SUITES = {"mlp": ("gymnasium", ["CartPole-v1"]), "shallow": ("catch", None)}


class Agents:
  """`count` learners of one experiment on one device, and a batch each."""

  def __init__(self, network: str, count: int):
    suite, levels = SUITES[network]
    exp = experiment.build(suite, levels)
    strategy = learner_lib.make_strategy(["/cpu:0"])
    env = anakin.environment_for(exp)
    self.learners, self.batches = [], []
    for seed in range(count):
      tf.random.set_seed(seed)
      learner = learner_lib.Learner(exp.config, exp.make_network,
                                    exp.observation_spec, strategy=strategy)
      trainer = anakin.Anakin(env, learner, exp.config.batch_size, seed=seed)
      batch, _ = tf.function(trainer._unroll)(trainer.initial_carry())  # pylint: disable=protected-access
      self.learners.append(learner)
      self.batches.append(batch)
    self.stacked_batch = tf.nest.map_structure(lambda *x: tf.stack(x),
                                               *self.batches)
    self.entropy_cost = tf.constant(exp.config.entropy_cost)

  def one_after_another(self, xla: bool):
    """every agent's gradients, in a list per agent."""
    def program(batches):
      return [learner._part_gradients(  # pylint: disable=protected-access
          batch, learner.variables, self.entropy_cost)[0]
              for learner, batch in zip(self.learners, batches)]
    compiled = tf.function(program, jit_compile=xla)
    return lambda: compiled(self.batches)

  def vectorised(self, xla: bool):
    """every agent's gradients, stacked `[agents, ...]` per variable."""
    template = self.learners[0]

    def one_agent(args):
      weights, batch = args
      with networks.reading(template.network, weights):
        gradients, _, _ = template._part_gradients(  # pylint: disable=protected-access
            batch, list(weights), self.entropy_cost)
      return gradients

    def program(batches):
      weights = [tf.stack(same) for same in
                 zip(*(learner.variables for learner in self.learners))]
      return tf.vectorized_map(one_agent, (weights, batches),
                               fallback_to_while_loop=False)
    compiled = tf.function(program, jit_compile=xla)
    return lambda: compiled(self.stacked_batch)


def largest_difference(by_agent, stacked) -> float:
  return max(float(tf.reduce_max(tf.abs(stacked[i][k] - g)))
             for k, gradients in enumerate(by_agent)
             for i, g in enumerate(gradients))


def time_calls(call, calls: int) -> float:
  """milliseconds per call, the results read back."""
  start = time.perf_counter()
  for _ in range(calls):
    result = call()
  tf.nest.map_structure(np.asarray, result)
  return (time.perf_counter() - start) / calls * 1e3


def alternate(programs: dict, repeats: int, calls: int) -> dict:
  """name → median milliseconds per call, the programs taking turns."""
  times = {name: [] for name in programs}
  for _ in range(repeats):
    for name, call in programs.items():
      times[name].append(time_calls(call, calls))
  return {name: statistics.median(t) for name, t in times.items()}


def reason(error: Exception) -> str:
  """The line of TensorFlow's message that says why: an op error's first
  (graph attributes in brackets dropped), else its last."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if isinstance(error, tf.errors.OpError):
    line = re.sub(r"\[[^\]]*\]|\{\{[^}]*\}\}", "", lines[0] if lines else "")
  else:
    line = lines[-1] if lines else ""
  name = type(error).__name__
  return (line if line.startswith(name) else f"{name}: {line}")[:240]


def gradients_row(network: str, count: int, xla: bool, repeats: int,
                  calls: int) -> None:
  agents = Agents(network, count)
  programs = {"one": agents.one_after_another(xla)}
  start = time.perf_counter()
  reference = programs["one"]()
  first_calls = [time.perf_counter() - start]
  label = f"{network:8s} {count:2d} agents{' xla' if xla else ''}"
  # pfor logs each op it cannot convert with its stack; the one line below
  # says why.
  tf.get_logger().setLevel("CRITICAL")
  try:
    vectorised = agents.vectorised(xla)
    start = time.perf_counter()
    difference = largest_difference(reference, vectorised())
    first_calls.append(time.perf_counter() - start)
    programs["vectorised"] = vectorised
  except (ValueError, TypeError, tf.errors.OpError) as error:
    refusal = reason(error)
  finally:
    tf.get_logger().setLevel("WARNING")
  medians = alternate(programs, repeats, calls)
  line = f"{label}: one after another {medians['one']:7.1f} ms"
  if "vectorised" in medians:
    line += (f", vectorised {medians['vectorised']:7.1f} ms per call: "
             f"{medians['one'] / medians['vectorised']:.2f}x; first calls "
             f"{first_calls[0]:.1f} s and {first_calls[1]:.1f} s; largest "
             f"gradient difference {difference:.2g}")
  else:
    line += (f" per call (first {first_calls[0]:.1f} s); vectorised "
             f"refused: {refusal}")
  print(line)


def iterations_row(network: str, count: int, xla: bool, repeats: int,
                   calls: int) -> None:
  """Whole anakin iterations (every agent's unroll and update), as
  `impala_tf.anakin.together` runs them: each agent's ops side by side,
  and vectorised (`impala_tf.anakin.vectorised`)."""
  from impala_tf.anakin import together  # pylint: disable=g-import-not-at-top
  from impala_tf.anakin import vectorised  # pylint: disable=g-import-not-at-top
  suite, levels = SUITES[network]
  exp = experiment.build(suite, levels)
  strategy = learner_lib.make_strategy(["/cpu:0"])
  make = lambda seed=None: learner_lib.Learner(
      exp.config, exp.make_network, exp.observation_spec, strategy=strategy,
      xla_gradients=xla, seed=seed)
  env = anakin.environment_for(exp)
  batch = exp.config.batch_size
  side = together._SideBySide([  # pylint: disable=protected-access
      anakin.Anakin(env, make(seed), batch, seed=seed, xla=xla)
      for seed in range(count)])
  vec = vectorised.Vectorised(env, [make(seed) for seed in range(count)],
                              make, batch, xla=xla)
  carries = {"side": side.initial_carry(), "vec": vec.initial_carry()}
  programs = {"side": side, "vec": vec}

  def call(name):
    def run():
      outputs, carries[name] = programs[name].train(carries[name], calls)
      return outputs
    return run

  for name in programs:
    call(name)()  # Traced and compiled.
  medians = alternate({name: call(name) for name in programs}, repeats, 1)
  per = {name: ms / calls for name, ms in medians.items()}
  frames = count * vec.frames_per_iteration
  print(f"{network:8s} {count:2d} agents{' xla' if xla else ''}, whole "
        f"iterations ({calls} per call): side by side {per['side']:7.1f} ms, "
        f"vectorised {per['vec']:7.1f} ms per iteration: "
        f"{per['side'] / per['vec']:.2f}x; {frames / per['side'] * 1e3:,.0f} "
        f"and {frames / per['vec'] * 1e3:,.0f} frames/s over all agents")


def convolutions_row(count: int, repeats: int, calls: int) -> None:
  """The shallow torso's two convolutions on Catch's learner batch."""
  exp = experiment.build("catch")
  frames = exp.config.batch_size * (exp.config.unroll_length + 1)
  shape = exp.observation_spec["frame"][0]
  rng = np.random.default_rng(0)
  layers = [(8, 4, shape[-1], 16), (4, 2, 16, 32)]  # kernel, stride, in, out
  size = shape[0]
  for kernel, stride, channels, out in layers:
    x = tf.constant(rng.random((count, frames, size, size, channels)),
                    tf.float32)
    w = tf.constant(rng.standard_normal((count, kernel, kernel, channels,
                                         out)), tf.float32)

    @tf.function
    def each(x, w, stride=stride):
      return tf.stack([tf.nn.conv2d(x[k], w[k], stride, "VALID")
                       for k in range(count)])

    # The grouped filter: agent k's [kernel, kernel, channels, out] at
    # output channels k*out..(k+1)*out.
    w_grouped = tf.transpose(w, [1, 2, 3, 0, 4])
    w_grouped = tf.reshape(w_grouped, [kernel, kernel, channels,
                                       count * out])

    @tf.function
    def grouped_call(x, w_grouped=w_grouped, stride=stride, out=out,
                     channels=channels):
      xs = tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]),
                      [*x.shape[1:-1], count * channels])
      y = tf.nn.conv2d(xs, w_grouped, stride, "VALID")
      y = tf.reshape(y, [*y.shape[:-1], count, out])
      return tf.transpose(y, [3, 0, 1, 2, 4])

    difference = float(tf.reduce_max(tf.abs(each(x, w) - grouped_call(x))))
    medians = alternate({"each": lambda: each(x, w),
                         "grouped": lambda: grouped_call(x)}, repeats, calls)
    print(f"conv {kernel}x{kernel}/{stride} {count:2d} agents, {frames} "
          f"frames {size}x{size}x{channels}: one per agent "
          f"{medians['each']:7.2f} ms, grouped {medians['grouped']:7.2f} ms "
          f"per call: {medians['each'] / medians['grouped']:.2f}x; largest "
          f"difference {difference:.2g}")
    size = (size - kernel) // stride + 1


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--networks", default="mlp,shallow")
  parser.add_argument("--agents", default="1,4,8")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--calls", type=int, default=20)
  parser.add_argument("--xla", action="store_true")
  parser.add_argument("--iterations", action="store_true",
                      help="Time whole anakin iterations (unroll and update "
                      "of every agent) side by side and vectorised instead.")
  args = parser.parse_args()
  names = args.networks.split(",")
  unknown = sorted(set(names) - set(SUITES))
  if unknown:
    parser.error(f"unknown --networks {unknown}; expected some of "
                 f"{sorted(SUITES)}.")
  counts = [int(n) for n in args.agents.split(",")]
  print(f"CPU: {cpu.read_cpu_info().describe()}; TensorFlow {tf.__version__}"
        f"; medians of {args.repeats} alternating runs of {args.calls} calls.")
  for network in names:
    for count in counts:
      for xla in ([False, True] if args.xla else [False]):
        if args.iterations:
          iterations_row(network, count, xla, args.repeats, args.calls)
        else:
          gradients_row(network, count, xla, args.repeats, args.calls)
    if network == "shallow" and not args.iterations:
      for count in counts:
        convolutions_row(count, args.repeats, args.calls)


if __name__ == "__main__":
  main()
