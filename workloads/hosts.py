"""Several "hosts" on one machine: network namespaces joined by a bridge, torn down always.

Each host is a network namespace of its own with one end of a veth pair in it (an address
``10.213.N.(10+i)/24``); the other ends hang on a bridge holding ``10.213.N.1``, where the
run's PostgreSQL listens. Worker processes that enter a host's namespace
(:attr:`taskqueue.EngineOptions.netns`) reach the server over TCP through their own network
stack, as workers on separate machines do, and killing a host is SIGKILLing every process
in its namespace (``ip netns pids``).

Everything is named after the owning process and a random token (``qp-<pid>-<token>-h<i>``,
links ``qpb<token>``/``qpv<token>h<i>``), so concurrent runs never collide, and a run that
was itself SIGKILLed leaves names the next run recognises as stale and removes.
:meth:`HostNetwork.close` runs on every way out of the ``with`` block (errors, Ctrl-C,
SIGTERM turned into cancellation) and raises if anything it made is still there.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from runs import UsageError

from .errors import WorkloadError

SUBNET_PREFIX = "10.213"
"""The private range hosts get their /24 from (``10.213.N.0/24``, N free on this machine)."""
NETNS_PREFIX = "qp-"
LINK_PREFIXES = ("qpb", "qpv")
IP_TIMEOUT_S = 10.0
"""The longest one ``ip`` command may take before the run fails (it takes milliseconds)."""
KILL_WAIT_S = 5.0
"""How long a killed host's processes may take to be gone from its namespace."""
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21
"""Capability bits: links and addresses need NET_ADMIN; ``ip netns add`` (a mount) and
entering a namespace need SYS_ADMIN."""


class HostNetworkError(WorkloadError):
    """Setting up, killing or tearing down the hosts' network failed; names what and why."""


class HostsUnavailableError(WorkloadError, UsageError):
    """This machine cannot make network namespaces (no ``ip``, not Linux, not root)."""


def missing_for_hosts() -> str | None:
    """What this machine lacks to run hosts in network namespaces, or None when nothing."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not on PATH; install iproute2"
    missing = [
        name
        for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
        if not _effective_capabilities() >> bit & 1
    ]
    if missing:
        return (
            f"this process lacks {' and '.join(missing)} (ip netns add, veth and bridge links "
            "need them); run as root"
        )
    return None


def _effective_capabilities() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass  # no /proc: judged by the user id alone
    return (1 << 64) - 1 if os.geteuid() == 0 else 0


def check_hosts_available() -> None:
    """Raise :class:`HostsUnavailableError` naming what is missing."""
    problem = missing_for_hosts()
    if problem is not None:
        raise HostsUnavailableError(f"hosts in network namespaces: {problem}")


def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; its output. Raises :class:`HostNetworkError` with ip's own words."""
    command = ["ip", *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HostNetworkError(f"`{' '.join(command)}` failed: {error}") from None
    if check and done.returncode != 0:
        raise HostNetworkError(
            f"`{' '.join(command)}` failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout


@dataclass(frozen=True)
class Host:
    """One host: a network namespace with an address on the run's bridge."""

    name: str
    """``h0``, ``h1``...: how results and worker names call it."""
    netns: str
    address: str
    link: str
    """The veth end on the bridge (its peer, inside the namespace, is ``eth0``)."""

    def pids(self) -> list[int]:
        """Every process in this host's namespace now."""
        return [int(p) for p in ip("netns", "pids", self.netns, check=False).split()]


@dataclass
class HostNetwork:
    """``hosts`` namespaces on a bridge; a context manager that always tears them down."""

    hosts_wanted: int
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    server_address: str = ""
    """The bridge's address: where a server must listen for every host to reach it."""
    network: str = ""
    """The hosts' /24, CIDR notation."""

    def __enter__(self) -> HostNetwork:
        check_hosts_available()
        remove_stale()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _create(self) -> None:
        third = _free_subnet()
        self.network = f"{SUBNET_PREFIX}.{third}.0/24"
        self.server_address = f"{SUBNET_PREFIX}.{third}.1"
        self.bridge = f"qpb{self.token}"
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.server_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i in range(self.hosts_wanted):
            host = Host(
                f"h{i}",
                f"{NETNS_PREFIX}{os.getpid()}-{self.token}-h{i}",
                f"{SUBNET_PREFIX}.{third}.{10 + i}",
                f"qpv{self.token}h{i}",
            )
            self.hosts.append(host)  # before it exists: a half-made host is torn down too
            ip("netns", "add", host.netns)
            ip(
                "link",
                "add",
                host.link,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.netns,
            )
            ip("link", "set", host.link, "master", self.bridge, "up")
            ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.netns, "link", "set", "eth0", "up")
            ip("-n", host.netns, "link", "set", "lo", "up")

    def kill(self, host: Host) -> list[int]:
        """SIGKILL every process in ``host``'s namespace; returns their pids once all are gone.

        The caller reaps its own children (a zombie has left the namespace already)."""
        killed: list[int] = []
        deadline = time.monotonic() + KILL_WAIT_S
        while pids := host.pids():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue  # exited between the listing and the kill
                if pid not in killed:
                    killed.append(pid)
            if time.monotonic() > deadline:
                raise HostNetworkError(
                    f"host {host.name} ({host.netns}): processes {pids} still in its "
                    f"namespace {KILL_WAIT_S:g} s after SIGKILL"
                )
            time.sleep(0.01)
        return killed

    def close(self) -> None:
        """Kill every process left in the hosts, delete the namespaces, links and bridge.

        Runs every step even when one fails, then raises :class:`HostNetworkError` naming
        what is left."""
        problems: list[str] = []
        for host in self.hosts:
            try:
                self.kill(host)
            except HostNetworkError as error:
                problems.append(str(error))
            _delete("netns", host.netns, problems)
            _delete("link", host.link, problems)  # gone with its peer, unless the move failed
        if self.bridge:
            _delete("link", self.bridge, problems)
        left = [name for name in leftovers() if self.token in name]
        self.hosts = []
        self.bridge = ""
        if left:
            raise HostNetworkError(
                f"could not remove {', '.join(left)} ({'; '.join(problems) or 'no error'}); "
                "remove them with `ip netns del NAME` / `ip link del NAME`"
            )


def _delete(kind: str, name: str, problems: list[str]) -> None:
    """``ip netns del NAME`` (kind ``netns``) or ``ip link del NAME`` (``link``) if it
    exists; a failure goes into ``problems``."""
    if name in (netns_names() if kind == "netns" else link_names()):
        try:
            ip(kind, "del", name)
        except HostNetworkError as error:
            problems.append(str(error))


def netns_names() -> list[str]:
    """Names of every network namespace ``ip netns`` knows."""
    return [line.split()[0] for line in ip("netns", "list", check=False).splitlines() if line]


def link_names() -> list[str]:
    """Names of every link of this (the root) namespace."""
    names = []
    for line in ip("-o", "link", "show", check=False).splitlines():
        match = re.match(r"\d+:\s+([^:@\s]+)", line)
        if match:
            names.append(match.group(1))
    return names


def leftovers() -> list[str]:
    """Namespaces and links named like the ones this module makes, of any run."""
    return [n for n in netns_names() if n.startswith(NETNS_PREFIX)] + [
        n for n in link_names() if n.startswith(LINK_PREFIXES)
    ]


def remove_stale() -> list[str]:
    """Remove what runs whose process no longer exists left behind (SIGKILLed runs cannot
    clean up); returns the names removed."""
    stale_tokens = set()
    for name in netns_names():
        match = re.fullmatch(rf"{NETNS_PREFIX}(\d+)-([0-9a-f]+)-h\d+", name)
        if match and not process_alive(int(match.group(1))):
            stale_tokens.add(match.group(2))
    removed: list[str] = []
    problems: list[str] = []
    for name in leftovers():
        if any(token in name for token in stale_tokens):
            if name.startswith(NETNS_PREFIX):
                for pid in Host("stale", name, "", "").pids():
                    _kill_quietly(pid)
                _delete("netns", name, problems)
            else:
                _delete("link", name, problems)
            removed.append(name)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a stale name's owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: what we wanted
        os.kill(pid, signal.SIGKILL)


def _free_subnet() -> int:
    """A third octet N with no address of ``10.213.N.0/24`` on this machine, random so
    concurrent runs rarely race for one (a race fails loudly: the address add collides)."""
    used = set()
    for line in ip("-o", "-4", "addr", "show", check=False).splitlines():
        match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)", line)
        if match and match.group(1).startswith(SUBNET_PREFIX + "."):
            used.add(int(ipaddress.IPv4Address(match.group(1)).packed[2]))
    free = [n for n in range(256) if n not in used]
    if not free:
        raise HostNetworkError(f"every {SUBNET_PREFIX}.N.0/24 is in use on this machine")
    return random.choice(free)


def split(total: int, parts: int) -> Iterator[int]:
    """``total`` workers over ``parts`` hosts as evenly as possible (the first get more)."""
    for i in range(parts):
        yield total // parts + (1 if i < total % parts else 0)


def hosts_of(workers: Sequence[str], hosts: Sequence[Host]) -> dict[str, str]:
    """Worker name -> host name, for names made as ``<host>-...`` or ``<host>r<n>-...``."""
    out = {}
    for worker in workers:
        for host in hosts:
            if re.match(rf"{host.name}(r\d+)?-", worker):
                out[worker] = host.name
    return out
