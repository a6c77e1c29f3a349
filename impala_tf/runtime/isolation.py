"""Keep a local run's TF ports unreachable from other hosts.

A TF server binds all interfaces and has no authentication: anyone who can
reach its port can run any TF op on this host (read and write files). In
local mode the learner and its actors therefore run inside one private
network namespace that has only loopback, made with an unprivileged user
namespace (``unshare --net --map-root-user``). Where that is not allowed
(containers without user namespaces, hardened kernels, no ``unshare``), the
launcher prints ``exposure_warning(port)`` instead.

How the launcher uses it::

    if not is_isolated() and private_network_available():
      # Run the rest of the launch as a supervised child inside the namespace.
      supervisor.start("local", isolated_argv(sys.argv_of_this_launch))
    elif not is_isolated():
      print(exposure_warning(port))

Do not ``os.exec`` into the ``unshare`` command line: ``unshare --fork``
ignores SIGTERM (checked with util-linux 2.38), so a SIGTERM to that pid would
do nothing. Started through ``processes.Supervisor``, it sits in its own
process group, which the supervisor signals as a whole; ``--kill-child`` makes
the namespace's first process die with ``unshare``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Sequence

# Set in the environment of a process that already runs inside the private
# network namespace, so it does not try to isolate itself again.
ISOLATED_ENV = "IMPALA_TF_NETNS"

# Brings loopback up (a new namespace has it down), marks the child as
# isolated, then replaces the shell with the real command ("$@").
_INNER_SCRIPT = f'ip link set lo up && {ISOLATED_ENV}=1 exec "$@"'


def is_isolated() -> bool:
  """Whether this process runs inside the private namespace made here."""
  return os.environ.get(ISOLATED_ENV) == "1"


def isolated_argv(argv: Sequence[str]) -> list[str]:
  """A command line that runs ``argv`` in a new network namespace with only
  loopback up, with ``IMPALA_TF_NETNS=1`` in its environment."""
  if not argv:
    raise ValueError("isolated_argv needs a command to run")
  unshare, ip = shutil.which("unshare"), shutil.which("ip")
  if unshare is None or ip is None:
    raise RuntimeError(
        "network isolation needs the 'unshare' (util-linux) and 'ip' "
        "(iproute2) commands; check private_network_available() first")
  return [unshare, "--net", "--map-root-user", "--kill-child",
          "sh", "-c", _INNER_SCRIPT, "impala_tf-netns", *argv]


@functools.lru_cache(maxsize=1)
def private_network_available() -> bool:
  """Whether this machine lets us create a user + network namespace with
  loopback up (tried once, with a trivial command)."""
  try:
    argv = isolated_argv(["true"])
  except RuntimeError:
    return False
  try:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=10, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return False
  return result.returncode == 0


def exposure_warning(port: int) -> str:
  """The one-line warning printed when isolation is impossible."""
  return (f"WARNING: could not isolate the local run in a private network "
          f"namespace; the learner's TF server port {port} listens on all "
          f"interfaces without authentication, so anyone who can reach this "
          f"host on port {port} can run any TensorFlow op here (read and "
          f"write files). Firewall port {port} or run on a trusted network.")
