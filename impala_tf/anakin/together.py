r"""Several anakin runs trained in one compiled program: many seeds (or
hyperparameter settings) of an ablation at once.

  python -m impala_tf.anakin.together [--vectorise] RUNS.json

RUNS.json is a list of launch command lines (each a list of `python -m
impala_tf.launch` flags, every one with `--run_mode=anakin` and its own
`--logdir`); `python -m impala_tf.ablate --run_mode=anakin --together`
writes one and starts this. Each run is an agent of its own (its network,
optimiser, hyperparameters, seed and environments) and a run directory of
its own, with everything a run keeps (config.json, progress lines prefixed
with the run's name, summaries, checkpoints and resume, result.json, the
exported policy). One `tf.function` steps and updates every agent
`--anakin_iterations` times per call (a `tf.while_loop`): one process,
one TensorFlow start, one trace, and TensorFlow's executor runs the
agents' independent ops side by side on the machine's cores.

By default each agent keeps its own ops, side by side in the program
(docs/benchmarks.md measures what that gains over one run after another).
With `--vectorise` (runs that differ only in their seed) the agents are
vectorised into one set of wider kernels, as `jax.vmap` would do:
their weights stacked, one grouped convolution or batched matrix product
per layer for all (`anakin.vectorised`; TensorFlow's own map over stacked
weights, `tf.vectorized_map`, refuses a convolution with one filter per
agent: benchmarks/vectorised_agents.py). On 2 CPU cores that is slower
than side by side (docs/benchmarks.md); it is meant for accelerators,
where each kernel's launch costs more than its arithmetic. The runs share
the frame budget and the frames of an update (runs differing in these are
refused); a run that ends early (diverged) stops being recorded while the
others go on.
"""

import json
import os
import threading
import time
from typing import Callable, Sequence

import tensorflow as tf

from impala_tf import anakin


class _Member:
  """One agent's update source inside a `Together` call (no queue)."""

  compute_s = 0.0

  def start(self, loop):
    del loop

  def fill(self):
    return None

  def close(self):
    pass


def train_together(plans: Sequence, *, stop: threading.Event,
                   log: Callable[[str], None] = print,
                   vectorise: bool = False) -> list:
  """Trains every plan (role "anakin") together until their common frame
  budget is spent or `stop` is set; returns each run's
  `learner_loop.TrainingResult` (None for one that failed).

  `vectorise`: the agents' weights stacked and every layer one wider
  kernel for all (`anakin.vectorised`; runs that differ only in their
  seed); otherwise each agent's ops side by side."""
  from impala_tf import learner_loop  # pylint: disable=g-import-not-at-top
  from impala_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  check_together(plans)
  # Every agent on the first device (one logical CPU device per agent in
  # turn was no faster on 2 cores: docs/benchmarks.md).
  strategy = learner_lib.make_strategy(anakin.devices(1)[:1])

  def make_learner(plan, seed=None):
    exp = plan.experiment
    return learner_lib.Learner(
        exp.config, exp.make_network, exp.observation_spec,
        strategy=strategy, xla_gradients=plan.anakin.xla, seed=seed)

  learners, loops = [], []
  for plan in plans:
    exp = plan.experiment
    name = _name(plan)
    learners.append(make_learner(plan, plan.seed))
    loops.append(learner_loop.make_loop(
        exp, learners[-1], _Member(), logdir=plan.logdir,
        log_interval_s=plan.loop.log_interval_s,
        checkpoint_interval_s=plan.loop.checkpoint_interval_s, stop=stop,
        log=lambda line, name=name: log(f"[{name}] {line}"),
        max_nonfinite_updates=plan.loop.max_nonfinite_updates))
  program = (_vectorised if vectorise else _side_by_side)(plans, learners,
                                                          make_learner)
  config = plans[0].experiment.config
  if (vectorise and plans[0].anakin.xla and config.torso != "mlp" and
      not tf.config.list_physical_devices("GPU")):
    log("Together: XLA's grouped convolutions on a CPU ran 14x to 28x "
        "slower than the agents side by side (docs/benchmarks.md); "
        "without --vectorise they run side by side.")
  total = plans[0].experiment.config.total_frames
  iterations = plans[0].anakin.iterations
  active = list(range(len(plans)))
  try:
    for loop in loops:
      loop.begin()
    carries = program.initial_carry()
    log(f"Together: {len(plans)} agents in one compiled program"
        f"{', vectorised' if vectorise else ''}, {iterations} updates each "
        "per call.")
    first = True
    while active and not stop.is_set():
      left = total - loops[active[0]].num_frames
      if left <= 0:
        break
      count = anakin.updates_per_call(left, iterations,
                                      program.frames_per_iteration)
      start = time.time()
      outputs, carries = program.train(carries, count)
      if first:
        log(f"Together: traced, compiled and ran the first {count} updates "
            f"of every agent in {time.time() - start:.1f} s.")
        first = False
      for index in list(active):
        logs, returns = outputs[index]
        try:
          loops[index].feed(anakin.updates_of(logs, returns))
        except Exception as error:  # pylint: disable=broad-except
          # This run ends (recorded as diverged or failed); the others go
          # on, its agent's results are no longer read.
          loops[index].error = error
          log(f"[{_name(plans[index])}] {type(error).__name__}: {error}")
          active.remove(index)
          _finish(loops[index], plans[index], log)
  except BaseException as error:
    for index in active:
      loops[index].error = loops[index].error or error
    raise
  finally:
    for index in active:
      _finish(loops[index], plans[index], log)
  return [loop.result() if loop.error is None else None for loop in loops]


class _SideBySide:
  """Every agent's ops side by side in one `tf.while_loop` (one replica
  each): one trace for every count."""

  def __init__(self, trainers):
    self.trainers = trainers
    self.frames_per_iteration = trainers[0].frames_per_iteration

    def iteration(carries):
      outputs = [trainer._iteration(carry)  # pylint: disable=protected-access
                 for trainer, carry in zip(trainers, carries)]
      return ([logs_and_returns for logs_and_returns, _ in outputs],
              [carry for _, carry in outputs])

    self._program = tf.function(
        lambda carries, count: anakin.loop(iteration, carries, count))

  def initial_carry(self):
    return [trainer.initial_carry() for trainer in self.trainers]

  def train(self, carries, count: int):
    return self._program(carries, tf.constant(count))


def _side_by_side(plans, learners, make_learner):
  del make_learner
  return _SideBySide([
      anakin.Anakin(anakin.environment_for(plan.experiment), learner,
                    plan.experiment.config.batch_size, seed=plan.seed,
                    xla=plan.anakin.xla)
      for plan, learner in zip(plans, learners)])


def _vectorised(plans, learners, make_learner):
  from impala_tf.anakin import vectorised  # pylint: disable=g-import-not-at-top
  first = plans[0]
  vectorised.check_vectorisable([plan.experiment for plan in plans])
  return vectorised.Vectorised(
      anakin.environment_for(first.experiment), learners,
      lambda: make_learner(first), first.experiment.config.batch_size,
      seed=first.seed, xla=first.anakin.xla)


def _name(plan) -> str:
  return os.path.basename(os.path.normpath(plan.logdir))


def _finish(loop, plan, log):
  from impala_tf.learner_loop import progress  # pylint: disable=g-import-not-at-top
  loop.finish()
  if loop.error is None:
    log(f"[{_name(plan)}] " + progress.done_line(
        loop.result(), plan.experiment.config.total_frames))


def check_together(plans: Sequence) -> None:
  """Refuses runs that cannot share one program, in one line."""
  if not plans:
    raise ValueError("No runs to train together.")
  not_anakin = [p.logdir for p in plans if p.role != "anakin"]
  if not_anakin:
    raise ValueError(f"Runs trained together need --run_mode=anakin; "
                     f"{', '.join(map(str, not_anakin))} have not.")
  budgets = {(p.experiment.config.total_frames,
              p.experiment.config.frames_per_update) for p in plans}
  if len(budgets) > 1:
    raise ValueError(
        "Runs trained together share their frame budget and the frames of "
        "an update (--total_frames, --batch_size, --unroll_length); got "
        + "; ".join(f"{t:,} and {u:,}" for t, u in sorted(budgets)) + ".")
  logdirs = [os.path.normpath(p.logdir) for p in plans]
  if len(set(logdirs)) != len(logdirs):
    raise ValueError("Runs trained together need a --logdir each.")


def define_flags() -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_bool(
      "vectorise", False, "Stack the agents' weights and run each layer as "
      "one wider kernel for all of them (runs that differ only in their "
      "seed, trained with RMSProp): impala_tf/anakin/vectorised.py. "
      "Otherwise each agent's ops run side by side.")


def main(argv: Sequence[str]) -> int:
  """`python -m impala_tf.anakin.together [--vectorise] RUNS.json` (module
  docstring)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from impala_tf import launch_flags  # pylint: disable=g-import-not-at-top
  from impala_tf.config import plan as plan_lib  # pylint: disable=g-import-not-at-top
  from impala_tf.records import run_lock  # pylint: disable=g-import-not-at-top
  from impala_tf.roles import common  # pylint: disable=g-import-not-at-top
  if len(argv) != 2:
    raise app.UsageError("expected one argument, RUNS.json: a list of "
                         "launch flag lists.")
  try:
    with open(argv[1]) as f:
      commands = json.load(f)
  except (OSError, ValueError) as e:
    raise app.UsageError(f"{argv[1]}: {e}") from None
  if not (isinstance(commands, list) and all(
      isinstance(c, list) and all(isinstance(a, str) for a in c)
      for c in commands)):
    raise app.UsageError(f"{argv[1]}: expected a JSON list of lists of "
                         "launch flags.")
  plans = [launch_flags.plan_from_argv(["impala_tf.launch", *command],
                                       environ={}) for command in commands]
  vectorise = flags.FLAGS.vectorise
  try:
    check_together(plans)
    if vectorise:
      from impala_tf.anakin import vectorised  # pylint: disable=g-import-not-at-top
      vectorised.check_vectorisable([plan.experiment for plan in plans])
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  for plan in plans:
    plan_lib.check_run_directory(plan.logdir)
    plan_lib.check_resume(plan)
  locks = []
  try:
    for plan in plans:
      try:
        locks.append(run_lock.RunLock(plan.logdir).acquire(log=common.log))
      except run_lock.RunDirectoryBusyError as e:
        raise plan_lib.PlanError(str(e)) from None
    common.log(f"Together on {common.configure_cpu(plans[0], 'anakin')}.")
    from impala_tf.runtime import tf_startup  # pylint: disable=g-import-not-at-top
    tf_startup.set_log_level(plans[0].tf_log_level)
    stop = threading.Event()
    common.stop_on_signals(stop)
    results = train_together(plans, stop=stop, log=common.log,
                             vectorise=vectorise)
  finally:
    for lock in locks:
      lock.release()
  return 0 if all(r is not None for r in results) else 1


if __name__ == "__main__":
  from impala_tf import cli  # pylint: disable=g-import-not-at-top
  cli.run("anakin.together", main, define_flags=define_flags)
