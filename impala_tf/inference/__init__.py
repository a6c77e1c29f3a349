"""Central inference (`--inference=central`): actors only step their
environments; one server on the learner's host evaluates the policy for
all of them in batches, on the accelerator when there is one (the Podracer
report's Sebulba; SEED RL and Sample Factory do the same).

* `server`: the batching server, its core-state table and its weights;
* `transport`: how requests reach it (in-process, or a socket next to the
  learner's TF server);
* `client`: the actor's side, a policy with `acting.actor.LocalPolicy`'s
  interface (`RemotePolicy`).

Trajectories are still assembled by the actors and enqueued as before.
"""
