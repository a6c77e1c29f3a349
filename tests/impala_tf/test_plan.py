"""The run plan: every default and check of a run, resolved in-process
from the launcher's flags, without TensorFlow and without a subprocess."""

import json
import subprocess
import sys

from absl import flags
import pytest

from impala_tf import launch_flags
from impala_tf.config import plan as plan_lib


def _plan(*args, environ=None, cpu_count=2, now=0.0):
  flag_values = launch_flags.define_flags(flags.FlagValues())
  flag_values(["launch", *args])
  return plan_lib.resolve(flag_values.flag_values_dict(), environ or {},
                          cpu_count=cpu_count, now=now)


@pytest.mark.parametrize("flags,message", [
    (["--suite=procgen"], "Unknown suite 'procgen'; expected one of atari57"),
    (["--suite=atari57", "--levels=pongg"], "pong"),
    (["--suite=catch", "--num_actors=0"], "--num_actors=0"),
    (["--suite=catch", "--batch_size=64", "--queue_capacity=32"],
     "smaller than the batch size"),
    (["--suite=catch", "--torso=resnet"], "torso"),
    (["--suite=catch", "--max_grad_norm=big"], "number or 'none'"),
    (["--suite=catch", "--passes_per_batch=0"], "passes_per_batch=0 must be "
     "a positive integer"),
    (["--suite=catch", "--ppo_clip=1.5"], "ppo_clip=1.5 must be in (0, 1)"),
    (["--suite=catch", "--ppo_clip=0.2", "--correction=epsilon"],
     "ppo_clip cannot be combined with correction='epsilon'"),
    (["--suite=catch", "--actor_threads=-1"], "--actor_threads"),
    (["--suite=catch", "--envs_per_actor=0"], "--envs_per_actor=0"),
    (["--suite=catch", "--queue_capacity=0"], "--queue_capacity=0"),
    (["--suite=catch", "--job=actor", "--learner_address=notahost"],
     "the learner address must be HOST:PORT"),
    (["--suite=catch", "--job=learner", "--port=70000"], "--port=70000"),
    (["--suite=catch", "--seed=-1"], "--seed=-1"),
    (["--suite=catch", "--logdir=afile"], "--logdir afile is a file"),
    (["--suite=catch", "--logdir=afile/run"], "--logdir afile/run cannot be "
     "created"),
    (["--run_mode=anakin"], "--suite=atari57 --levels=pong has none. It "
     "takes --suite=catch --levels=catch, --suite=gymnasium "
     "--levels=CartPole-v1"),
    (["--suite=catch", "--run_mode=anakin", "--replay_capacity=64"],
     "--run_mode=anakin acts with the weights it learns with, without "
     "actors, a queue or replay; drop --replay_capacity"),
    (["--suite=catch", "--run_mode=anakin", "--policy_lag=2"],
     "drop --policy_lag"),
    (["--suite=catch", "--run_mode=anakin", "--anakin_replicas=3"],
     "--batch_size=32 cannot be split evenly over --anakin_replicas=3"),
    (["--suite=catch", "--run_mode=anakin", "--job=learner"],
     "--run_mode=anakin runs on one machine, without cluster roles"),
    (["--suite=catch", "--inference=central", "--inference_groups=3"],
     "--inference_groups=3 does not divide --envs_per_actor=8"),
    (["--suite=catch", "--inference=central", "--policy_lag=1"],
     "use --inference=actor with --policy_lag"),
    (["--suite=catch", "--inference=central", "--run_mode=anakin"],
     "--inference=central is for runs with actors"),
    (["--suite=catch", "--job=inference", "--learner_address=h:5000"],
     "--job=inference is central inference's server; give "
     "--inference=central"),
])
def test_bad_input_is_one_clear_error(tmp_path, monkeypatch, flags,
                                      message):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "afile").write_text("not a directory")
  with pytest.raises(plan_lib.PlanError) as info:
    plan = launch_flags.plan_from_argv(["launch", *flags], environ={})
    plan_lib.check_run_directory(plan.logdir)
  assert message in str(info.value)
  assert "\n" not in str(info.value)
  # Nothing started: no default run directory.
  assert not (tmp_path / "runs").exists()


def test_a_local_run_by_default(monkeypatch):
  monkeypatch.setattr(plan_lib.time, "localtime",
                      lambda now: __import__("time").gmtime(now))
  plan = _plan("--suite=catch", now=86400.0 * 365)
  assert plan.role == "local" and plan.num_actors == 2
  assert plan.logdir == "runs/catch-19710101-000000"
  assert plan.experiment.levels == ("catch",)
  assert plan.experiment.envs_per_actor == 8
  # Two batches, or one unroll of every actor (Catch batch 32).
  assert plan.queue_capacity == 64 and plan.actor_start_below == 24
  assert plan.loop == plan_lib.LoopOptions(5.0, 600.0, 5)
  assert plan.pbt is None and plan.notes == ()


def test_threads_mode_and_flags_that_override_the_preset():
  plan = _plan("--suite=catch", "--run_mode=threads", "--num_actors=3",
               "--batch_size=8", "--max_grad_norm=none", "--logdir=x")
  assert plan.role == "threads" and plan.num_actors == 3
  assert plan.logdir == "x"
  assert plan.experiment.config.batch_size == 8
  assert plan.experiment.config.max_grad_norm is None
  assert plan.queue_capacity == max(2 * 8, 3 * 8)


def test_anakin_mode_takes_a_level_written_in_tensorflow():
  plan = _plan("--suite=catch", "--run_mode=anakin", "--anakin_replicas=2",
               "--anakin_iterations=6", "--noanakin_xla", "--logdir=x")
  assert plan.role == "anakin" and plan.logdir == "x"
  assert plan.anakin == plan_lib.AnakinOptions(
      replicas=2, iterations=6, xla=False,
      tf_env="impala_tf.tfenvs.catch:Catch")
  cartpole = _plan("--suite=gymnasium", "--levels=CartPole-v1",
                   "--run_mode=anakin", "--logdir=x")
  assert cartpole.anakin == plan_lib.AnakinOptions(
      tf_env="impala_tf.tfenvs.cartpole:CartPole")
  assert _plan("--suite=catch", "--logdir=x").anakin is None


def test_cluster_roles_from_flags_and_from_tf_config():
  actor = _plan("--suite=catch", "--job=actor", "--task=3",
                "--learner_address=learner:7000")
  assert (actor.role, actor.task, actor.learner_address) == (
      "actor", 3, "learner:7000")
  assert actor.logdir is None and actor.queue_capacity is None
  tf_config = {"cluster": {"learner": ["host:5000"]},
               "task": {"type": "learner", "index": 0}}
  learner = _plan("--suite=catch", environ={"TF_CONFIG": json.dumps(
      tf_config)})
  assert learner.role == "learner" and learner.port == 5000
  assert learner.logdir is None  # A cluster learner may run without one.
  with pytest.raises(plan_lib.PlanError, match="TF_CONFIG must look like"):
    _plan("--suite=catch", environ={"TF_CONFIG": "{not json"})
  with pytest.raises(plan_lib.PlanError, match="needs --port"):
    _plan("--suite=catch", "--job=learner")
  with pytest.raises(plan_lib.PlanError, match="needs --learner_address"):
    _plan("--suite=catch", "--job=actor")


def test_central_inference_listens_next_to_the_learner():
  # Every role of a cluster finds the server at the learner's port + 1.
  central = ("--suite=catch", "--inference=central", "--num_actors=3")
  learner = _plan(*central, "--job=learner", "--port=5000")
  actor = _plan(*central, "--job=actor", "--learner_address=h:5000")
  server = _plan(*central, environ={"TF_CONFIG": json.dumps(
      {"cluster": {"learner": ["h:5000"]},
       "task": {"type": "inference", "index": 0}})})
  assert server.role == "inference" and server.learner_address == "h:5000"
  for plan in (learner, actor, server):
    assert plan.inference.central and plan.inference.port == 5001
  # Batches of every actor's environments by default; the flags as given.
  assert server.inference == plan_lib.InferenceOptions(
      mode="central", batch=24, wait_s=0.0, groups=2, port=5001,
      server="process")
  given = _plan(*central, "--inference_batch=8", "--inference_wait_ms=2",
                "--inference_groups=4", "--inference_server=learner",
                "--inference_device=/GPU:0", "--inference_port=6000")
  assert given.inference == plan_lib.InferenceOptions(
      mode="central", batch=8, wait_s=0.002, groups=4, device="/GPU:0",
      port=6000, server="learner")
  assert not _plan("--suite=catch").inference.central


def test_a_population_member_gets_its_directory_and_rules(tmp_path):
  plan = _plan("--suite=catch", f"--pbt_dir={tmp_path}", "--member=2",
               "--pbt_ready_episodes=30")
  assert plan.logdir == str(tmp_path / "member-2")
  assert plan.pbt == plan_lib.PbtOptions(str(tmp_path), 2, 20_000_000, 30,
                                         5.0, "table_d1")
  assert _plan("--suite=catch", f"--pbt_dir={tmp_path}", "--member=0",
               "--pbt_anneal").pbt.anneal
  with pytest.raises(plan_lib.PlanError, match="--pbt_dir needs --member"):
    _plan("--suite=catch", f"--pbt_dir={tmp_path}")
  with pytest.raises(plan_lib.PlanError, match="--member needs --pbt_dir"):
    _plan("--suite=catch", "--member=1")


def test_every_level_is_played():
  # Atari gives each actor one game: three games need three actors.
  plan = _plan("--levels=pong,breakout,qbert")
  assert plan.num_actors == 3
  assert {int(plan.experiment.level_ids(a)[0]) for a in range(3)} == {
      0, 1, 2}
  with pytest.raises(plan_lib.PlanError, match=r"1 of the 3 levels would "
                     r"never be played by 2 actors x 16 environments "
                     r"\(qbert\)"):
    _plan("--levels=pong,breakout,qbert", "--num_actors=2")


def test_resolving_a_plan_starts_no_tensorflow():
  code = ("import sys\n"
          "from impala_tf import launch_flags\n"
          "plan = launch_flags.plan_from_argv(['launch', '--suite=catch'])\n"
          "assert plan.role == 'local'\n"
          "assert 'tensorflow' not in sys.modules, 'TF imported'\n")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
