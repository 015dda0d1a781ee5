"""Worker "hosts" for a test: network namespaces the test makes itself, or plain processes.

Each host is a network namespace (``ip netns add``) with ``lo`` up and a veth pair on a private
/30 of 10.231.0.0/16 (root end ``.1``, host end ``.2``). Services stay on loopback in the root
namespace: a relay (tests/support/relay.py) listens on each veth's root end and forwards to
them, so traffic never leaves loopback or the namespaces made here. Names carry the test
process's pid (parallel runs never clash; the leftovers of a killed run, whose pid is gone, are
removed by the next), and a free /30 is taken under a file lock. Everything is torn down on
exit, even when the test fails.

Where namespaces cannot be made (not root, no ``ip``, ``ip netns add`` refused), or with
``BROADCASTER_TEST_HOSTS=processes``, the hosts are plain processes on loopback, told apart by
their Celery ``--hostname``; ``fallback`` says why::

    with WorkerHosts(["host-a", "host-b"], {"redis": redis_url, ...}) as net:
        for host in net.hosts:
            dev.start_send_worker(host.name, wrapper=host.wrapper, env=net.env_for(host, env))
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where every /30 comes from; each host takes one.
POOL = ipaddress.ip_network("10.231.0.0/16")
PREFIX = "bct"
LOCK = Path(tempfile.gettempdir()) / "bc-netns.lock"
LOOPBACK = "127.0.0.1"


def ip(*args: str, netns: str | None = None) -> None:
    """One ``ip`` command; a failure raises with ip's own message."""
    argv = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise OSError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


@dataclass(frozen=True)
class Host:
    """One worker host: a name (its Celery node is ``NAME@%h``) and where it reaches services."""

    name: str
    #: Its network namespace; None in the fallback (a process on loopback).
    netns: str | None = None
    #: The address its services answer at: the root end of its veth, or loopback.
    service_addr: str = LOOPBACK

    @property
    def wrapper(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []


@dataclass
class WorkerHosts:
    """Hosts for ``names``, reaching the services at ``urls`` (name -> URL on loopback)."""

    names: list[str]
    urls: dict[str, str]
    #: Where the relay writes what goes wrong.
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".relay.log")[1]))
    hosts: list[Host] = field(default_factory=list)
    #: Why the hosts are plain processes, or None when each has its own namespace.
    fallback: str | None = None
    _relay: subprocess.Popen[bytes] | None = None
    _made: list[str] = field(default_factory=list)
    _veths: list[str] = field(default_factory=list)

    def __enter__(self) -> WorkerHosts:
        try:
            self.hosts = self._namespaces()
        except OSError as exc:
            self.close()
            self.fallback = str(exc)
            self.hosts = [Host(name) for name in self.names]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env_for(self, host: Host, env: dict[str, str]) -> dict[str, str]:
        """``env`` with every service URL pointed at the host's service address."""
        out = dict(env)
        for key, value in env.items():
            if value in self.urls.values():
                out[key] = _with_host(value, host.service_addr)
        return out

    # -- namespaces ------------------------------------------------------------------------------

    def _namespaces(self) -> list[Host]:
        forced = os.environ.get("BROADCASTER_TEST_HOSTS") == "processes"
        if forced:
            raise OSError("BROADCASTER_TEST_HOSTS=processes asks for plain processes")
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise OSError("network namespaces need root and iproute2's ip")
        _remove_leftovers()
        pid = os.getpid()
        hosts = []
        with open(LOCK, "w") as lock:  # two runs never take the same /30
            fcntl.flock(lock, fcntl.LOCK_EX)
            taken = _addresses_in_use()
            for i, name in enumerate(self.names):
                net = _free_net(taken)
                taken.add(net)
                root, inner = (str(a) for a in list(net.hosts())[:2])
                ns, veth = f"{PREFIX}-{pid}-{i}", f"{PREFIX}{pid}r{i}"
                ip("netns", "add", ns)
                self._made.append(ns)
                ip("link", "add", veth, "type", "veth", "peer", "name", f"{PREFIX}{pid}n{i}")
                self._veths.append(veth)
                ip("link", "set", f"{PREFIX}{pid}n{i}", "netns", ns)
                ip("addr", "add", f"{root}/30", "dev", veth)
                ip("link", "set", veth, "up")
                ip("addr", "add", f"{inner}/30", "dev", f"{PREFIX}{pid}n{i}", netns=ns)
                ip("link", "set", f"{PREFIX}{pid}n{i}", "up", netns=ns)
                ip("link", "set", "lo", "up", netns=ns)
                hosts.append(Host(name, ns, root))
        self._start_relay(hosts)
        return hosts

    def _start_relay(self, hosts: list[Host]) -> None:
        specs = []
        for url in self.urls.values():
            target = urllib.parse.urlsplit(url)
            port = target.port or 0
            specs += [f"{h.service_addr}:{port}={target.hostname}:{port}" for h in hosts]
        with open(self.log_path, "ab") as log:
            self._relay = subprocess.Popen(
                [sys.executable, "-m", "tests.support.relay", *specs],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self._relay.stdout is not None
        first = self._relay.stdout.readline().decode(errors="replace").strip()
        if first != "relay ready":
            raise RuntimeError(f"the relay did not start: {self.log_path.read_text()[-2000:]}")

    def close(self) -> None:
        """Stop the relay and delete every namespace (their veth pairs go with them)."""
        if self._relay is not None:
            self._relay.kill()
            self._relay.wait(10)
            self._relay = None
        for ns in self._made:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                ip("netns", "del", ns)
        self._made.clear()
        for veth in self._veths:  # gone with its namespace, unless it never got there
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                ip("link", "del", veth)
        self._veths.clear()


def _with_host(url: str, host: str) -> str:
    parts = urllib.parse.urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{host}" if userinfo else host
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _addresses_in_use() -> set[ipaddress.IPv4Network]:
    """The /30s of POOL that any interface of the root namespace already holds."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=30
    ).stdout
    nets = set()
    for addr in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", out):
        a = ipaddress.ip_address(addr)
        if a in POOL:
            nets.add(ipaddress.ip_network(f"{a}/30", strict=False))
    return nets


def _free_net(taken: set[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    blocks = list(POOL.subnets(new_prefix=30))
    for net in random.sample(blocks, 64):
        if net not in taken:
            return net
    raise OSError(f"no free /30 left in {POOL}")


def _remove_leftovers() -> None:
    """Namespaces of earlier runs whose process is gone (killed before its teardown)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    for pid, ns in {(m[1], m[0]) for m in re.findall(rf"^({PREFIX}-(\d+)-\d+)", out, re.M)}:
        if not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                ip("netns", "del", ns)
