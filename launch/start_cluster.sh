#!/usr/bin/env bash
# Starts an impala_tf run on a list of hosts over ssh: the first host runs the
# learner, every other host runs ACTORS_PER_HOST actor processes.
#
#   launch/start_cluster.sh HOSTS_FILE [extra impala_tf.launch flags...]
#
# HOSTS_FILE has one host per line (a name or address on a PRIVATE network:
# the learner's TF server has no authentication, see docs/cluster.md).
# Each host needs this package installed (pip install -e .) and the same
# flags; PORT, ACTORS_PER_HOST, PYTHON and LOGDIR can be set in the
# environment. Logs go to LOGDIR/<role>.log on each host, the learner's run
# directory is LOGDIR/learner. Stop the run with
# launch/start_cluster.sh HOSTS_FILE --stop.
#
# IMPALA_TF_REMOTE is the command that runs a command on a host, called as
# `$IMPALA_TF_REMOTE HOST COMMAND` like ssh (default "ssh"; e.g.
# "ssh -i ~/.ssh/cluster_key -o BatchMode=yes"). The tests run this script
# with a stand-in that runs COMMAND in a network namespace.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 HOSTS_FILE [--stop | impala_tf.launch flags...]" >&2
  exit 2
fi
hosts_file=$1; shift
mapfile -t hosts < <(grep -v '^\s*\(#\|$\)' "$hosts_file")
if [[ ${#hosts[@]} -lt 2 ]]; then
  echo "$hosts_file must list the learner host and at least one actor host" >&2
  exit 2
fi
read -ra remote <<< "${IMPALA_TF_REMOTE:-ssh}"
if [[ ${#remote[@]} -eq 0 ]]; then
  echo "IMPALA_TF_REMOTE is empty; it must name a command like ssh" >&2
  exit 2
fi
port=${PORT:-8470}
actors_per_host=${ACTORS_PER_HOST:-4}
python=$(printf %q "${PYTHON:-python3}")
logdir=$(printf %q "${LOGDIR:-impala_tf_run}")
learner=${hosts[0]}

if [[ "${1:-}" == "--stop" ]]; then
  for host in "${hosts[@]}"; do
    "${remote[@]}" "$host" "pkill -f 'impala_tf.launch .*--job=' || true"
  done
  exit 0
fi

flags=""
if [[ $# -gt 0 ]]; then
  flags=$(printf ' %q' "$@")  # Each flag quoted for the remote shell.
fi
"${remote[@]}" "$learner" "mkdir -p $logdir && nohup $python -m impala_tf.launch \
  --job=learner --port=$port --logdir=$logdir/learner \
  --num_actors=$(( (${#hosts[@]} - 1) * actors_per_host ))$flags \
  > $logdir/learner.log 2>&1 &"
task=0
for host in "${hosts[@]:1}"; do
  for _ in $(seq "$actors_per_host"); do
    "${remote[@]}" "$host" "mkdir -p $logdir && nohup $python -m impala_tf.launch \
      --job=actor --task=$task --learner_address=$learner:$port$flags \
      > $logdir/actor_$task.log 2>&1 &"
    task=$((task + 1))
  done
done
echo "learner on $learner:$port, $task actors; logs in $logdir/ on each host"
