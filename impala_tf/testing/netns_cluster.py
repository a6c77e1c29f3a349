"""Several "hosts" on one machine, for testing the cluster path: each host is
a network namespace with its own address on a private network.

Topology (every namespace is made here, and nothing leaves the machine)::

    host "learner"  eth0 192.0.2.10/24 ─┐
    host "actor0"   eth0 192.0.2.11/24 ─┼─ br0 ┐  the switch: a namespace of
    host "actor1"   eth0 192.0.2.12/24 ─┘      │  its own, with no address on
                                               │  the cluster network and no
    host "outsider" eth0 198.51.100.10/24 ─ br1┘  forwarding (198.51.100.1 on
                                                   br1 is the outside's gateway)

The cluster's hosts reach one another and nothing else; an "outside" host
has a network and a gateway of its own, but no route leads into the
cluster's network, like a machine of the office next to a private VPC
subnet. The addresses are the documentation ranges of RFC 5737 (TEST-NET-1
and -2), which belong to no real network.

Privileges: everything lives inside one user namespace made here (``unshare
--user --map-root-user``), whose root may create network namespaces,
bridges and veth pairs. That needs no privilege where the kernel allows
unprivileged user namespaces (as local mode's isolation does,
``impala_tf.runtime.isolation``); as real root without user namespaces the
namespaces are made directly. Where neither works, `SimulatedCluster.start`
raises `NetnsUnavailableError` saying why (tests skip on it).

Nothing global is touched (no ``ip netns`` names under /run/netns, no
interface of the machine): each namespace is held by a ``sleep`` process,
and `SimulatedCluster.close` kills every process in the namespaces, which
then vanish.

Running a program on a host::

    with SimulatedCluster(workdir, ["learner", "actor0"]) as cluster:
      proc = cluster.popen("learner", [sys.executable, "-m", ...])
      cluster.address("learner")  # "192.0.2.10"

`cluster.command(host, argv)` is the same as a command line (``nsenter``
into the host's namespaces, then ``argv``), and `cluster.write_remote`
writes a stand-in for ``ssh HOST COMMAND`` that runs COMMAND on the host
with that address or name.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Mapping, Sequence

CLUSTER_SUBNET = "192.0.2"     # TEST-NET-1: the cluster's private network.
OUTSIDE_SUBNET = "198.51.100"  # TEST-NET-2: a network outside it.
_FIRST_HOST = 10               # Host i gets SUBNET.(10 + i).
_GATEWAY = 1                   # The outside network's gateway: SUBNET.1.
_PR_SET_PDEATHSIG = 1
_READY = "ready"
# A namespace holder: says it is ready once inside, then holds the
# namespaces open until killed.
_HOLD = ["sh", "-c", f"echo {_READY} && exec sleep infinity"]


class NetnsUnavailableError(RuntimeError):
  """This machine does not let us make the simulated cluster (the message
  says what was missing or refused)."""


def _tool(name: str) -> str:
  """The path of a system tool; `ip` sits in /usr/sbin, which an
  unprivileged user's PATH often lacks."""
  found = shutil.which(name) or next(
      (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}", f"/usr/bin/{name}")
       if os.access(p, os.X_OK)), None)
  if found is None:
    raise NetnsUnavailableError(
        f"the simulated cluster needs the '{name}' command ("
        f"{'iproute2' if name == 'ip' else 'util-linux'}), which is not "
        "installed")
  return found


def _die_with_parent(parent_pid: int):
  """Runs in a holder between fork and exec: the kernel kills it when the
  test process dies, even by SIGKILL, so no namespace outlives a test."""
  libc = ctypes.CDLL(None, use_errno=True)
  if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
    os._exit(127)  # pylint: disable=protected-access
  if os.getppid() != parent_pid:
    os._exit(127)  # pylint: disable=protected-access


def _net_inode(pid: int) -> int | None:
  try:
    return os.stat(f"/proc/{pid}/ns/net").st_ino
  except OSError:
    return None


class SimulatedCluster:
  """Hosts in network namespaces on a private network (module docstring).

  Args:
    workdir: where the ssh stand-in and setup logs go (a test's tmp_path).
    hosts: names of the cluster's hosts, in address order.
    outside: names of hosts on the outside network.
  """

  def __init__(self, workdir: str | os.PathLike, hosts: Sequence[str],
               outside: Sequence[str] = ()):
    names = list(hosts) + list(outside)
    if len(set(names)) != len(names) or not hosts:
      raise ValueError(f"host names must be unique and the cluster needs at "
                       f"least one host; got hosts={list(hosts)}, "
                       f"outside={list(outside)}")
    self.workdir = os.fspath(workdir)
    self.hosts = list(hosts)
    self.outside = list(outside)
    self._addresses = {
        **{h: f"{CLUSTER_SUBNET}.{_FIRST_HOST + i}"
           for i, h in enumerate(self.hosts)},
        **{h: f"{OUTSIDE_SUBNET}.{_FIRST_HOST + i}"
           for i, h in enumerate(self.outside)}}
    self._holders: dict[str, subprocess.Popen] = {}
    self._switch: subprocess.Popen | None = None
    self._user_ns: str | None = None  # Path of the user namespace, if any.
    self._started: list[subprocess.Popen] = []
    self._inodes: set[int] = set()

  # ------------------------------------------------------------ set-up

  def __enter__(self) -> "SimulatedCluster":
    self.start()
    return self

  def __exit__(self, *exc_info):
    self.close()

  def start(self) -> "SimulatedCluster":
    """Makes the namespaces and the network; raises `NetnsUnavailableError`
    where the machine forbids it."""
    self._unshare, self._nsenter, self._ip = (
        _tool("unshare"), _tool("nsenter"), _tool("ip"))
    try:
      self._switch = self._start_switch()
      for name in self.hosts + self.outside:
        self._holders[name] = self._hold(
            self._enter_user() + [self._unshare, "--net", "--", *_HOLD],
            f"host {name!r}")
      self._inodes = {_net_inode(p.pid) for p in
                      [self._switch, *self._holders.values()]}
      self._wire()
    except BaseException:
      self.close()
      raise
    return self

  def _start_switch(self) -> subprocess.Popen:
    """The switch's namespace, inside a new user namespace when the machine
    allows one (then every later namespace belongs to it)."""
    attempts = [("an unprivileged user namespace",
                 [self._unshare, "--user", "--map-root-user", "--net", "--",
                  *_HOLD])]
    if os.geteuid() == 0:
      attempts.append(("a network namespace as root",
                       [self._unshare, "--net", "--", *_HOLD]))
    refusals = []
    for what, argv in attempts:
      try:
        switch = self._hold(argv, "the switch")
      except NetnsUnavailableError as e:
        refusals.append(f"{what}: {e}")
        continue
      if "--user" in argv:
        self._user_ns = f"/proc/{switch.pid}/ns/user"
      return switch
    raise NetnsUnavailableError(
        "cannot make network namespaces here (" + "; ".join(refusals) + ")")

  def _hold(self, argv: list[str], what: str) -> subprocess.Popen:
    """Starts a namespace holder; returns once it runs inside."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda parent=os.getpid(): _die_with_parent(parent))
    line = proc.stdout.readline().strip()
    if line != _READY:
      proc.kill()
      _, err = proc.communicate()
      raise NetnsUnavailableError(
          f"could not make the namespace of {what} with {shlex.join(argv)}: "
          f"{err.strip() or 'exit ' + str(proc.returncode)}")
    self._started.append(proc)
    return proc

  def _enter_user(self) -> list[str]:
    return [self._nsenter, *self._user_option(), "--"] if self._user_ns else []

  def _user_option(self) -> list[str]:
    # --preserve-credentials: nsenter's default (become uid 0 and drop
    # supplementary groups) fails unprivileged, where setgroups is denied in
    # a user namespace; our uid is already the namespace's root.
    return ([f"--user={self._user_ns}", "--preserve-credentials"]
            if self._user_ns else [])

  def _in_namespace(self, holder: subprocess.Popen) -> list[str]:
    return [self._nsenter, *self._user_option(),
            f"--net=/proc/{holder.pid}/ns/net", "--"]

  def _run(self, holder: subprocess.Popen, script: str):
    """Runs a shell `script` in `holder`'s namespaces; a failure names the
    command and its error."""
    result = subprocess.run(
        self._in_namespace(holder) + ["sh", "-ec", script],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        env=dict(os.environ, PATH=os.path.dirname(self._ip) + ":" +
                 os.environ.get("PATH", "")))
    if result.returncode != 0:
      raise NetnsUnavailableError(
          f"setting up the simulated network failed ({script!r}): "
          f"{result.stderr.strip() or result.stdout.strip()}")

  def _wire(self):
    """Bridges, veth pairs and addresses (module docstring)."""
    switch = ["ip link set lo up",
              "ip link add br0 type bridge", "ip link set br0 up",
              "ip link add br1 type bridge",
              f"ip addr add {OUTSIDE_SUBNET}.{_GATEWAY}/24 dev br1",
              "ip link set br1 up"]
    for i, name in enumerate(self.hosts + self.outside):
      bridge = "br0" if name in self.hosts else "br1"
      # The host's end is made right inside its namespace, as eth0.
      switch += [f"ip link add v{i} type veth peer name eth0 netns "
                 f"{self._holders[name].pid}",
                 f"ip link set v{i} master {bridge} up"]
    self._run(self._switch, " && ".join(switch))
    for name, holder in self._holders.items():
      host = ["ip link set lo up",
              f"ip addr add {self._addresses[name]}/24 dev eth0",
              "ip link set eth0 up"]
      if name in self.outside:
        host.append(f"ip route add default via {OUTSIDE_SUBNET}.{_GATEWAY}")
      self._run(holder, " && ".join(host))

  # ------------------------------------------------------------ use

  def address(self, host: str) -> str:
    """The host's address on its network."""
    try:
      return self._addresses[host]
    except KeyError:
      raise ValueError(f"no host {host!r}; the hosts are "
                       f"{sorted(self._addresses)}") from None

  def command(self, host: str, argv: Sequence[str]) -> list[str]:
    """`argv` as a command line that runs it on `host`."""
    if host not in self._holders:
      raise ValueError(f"no host {host!r}; the hosts are "
                       f"{sorted(self._holders)}")
    return self._in_namespace(self._holders[host]) + list(argv)

  def popen(self, host: str, argv: Sequence[str], *,
            env: Mapping[str, str] | None = None,
            **kwargs) -> subprocess.Popen:
    """Starts `argv` on `host` in a process group of its own (killed by
    `close`); other arguments as for `subprocess.Popen`."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(self.command(host, argv), env=env,
                            start_new_session=True, **kwargs)
    self._started.append(proc)
    return proc

  def tcp_reachable(self, host: str, address: str, port: int,
                    timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection from `host` to `address:port` succeeds.

    Only ever aim it at this cluster's addresses: the outside network has
    no route off the machine, but other hosts are not ours to probe.
    """
    probe = ("import socket, sys\n"
             "try:\n"
             f"  socket.create_connection(({address!r}, {port}), "
             f"timeout={timeout_s}).close()\n"
             "except OSError:\n"
             "  sys.exit(1)\n")
    result = subprocess.run(self.command(host, [sys.executable, "-c", probe]),
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=timeout_s + 30)
    return result.returncode == 0

  def write_remote(self, path: str | os.PathLike) -> str:
    """Writes an executable stand-in for ``ssh HOST COMMAND...`` at `path`:
    it runs ``sh -c "COMMAND..."`` on the host with that name or address,
    as ssh runs a remote command through the user's shell (unlike ssh, in
    this directory and environment). Returns the path."""
    cases = []
    for name, holder in self._holders.items():
      prefix = shlex.join(self._in_namespace(holder))
      cases.append(f"  {shlex.quote(name)}|{self._addresses[name]}) "
                   f"exec {prefix} sh -c \"$*\" ;;")
    script = "\n".join([
        "#!/bin/sh",
        "# A stand-in for ssh made by impala_tf.testing.netns_cluster: runs",
        "# the command on a host of a simulated cluster.",
        "host=$1; shift",
        'case "$host" in',
        *cases,
        '  *) echo "no host $host in the simulated cluster" >&2; exit 255 ;;',
        "esac", ""])
    path = os.fspath(path)
    with open(path, "w") as f:
      f.write(script)
    os.chmod(path, 0o755)
    return path

  def processes(self) -> list[int]:
    """Pids of every process in the cluster's namespaces but the holders:
    whatever was started there, however (ssh stand-in, nohup, exec)."""
    holders = {p.pid for p in [self._switch, *self._holders.values()] if p}
    pids = []
    for entry in os.listdir("/proc"):
      if entry.isdigit() and int(entry) not in holders and (
          _net_inode(int(entry)) in self._inodes):
        pids.append(int(entry))
    return pids

  # ------------------------------------------------------------ teardown

  def close(self):
    """Kills every process in the namespaces, then the holders: the
    namespaces, bridges and veth pairs go with them."""
    if self._inodes:
      for pid in self.processes():
        try:
          os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
          pass  # Gone already.
    for proc in reversed(self._started):
      if proc.poll() is None:
        try:
          os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
      proc.wait()
      for stream in (proc.stdout, proc.stderr):
        if stream is not None:
          stream.close()
    self._started = []
    self._holders = {}
    self._switch = None
    self._inodes = set()


def free_port() -> int:
  """A port number for a server in a host of the cluster: the OS picks one
  that is free on this machine's loopback (each namespace has all its ports
  free, so it is free there too)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]
