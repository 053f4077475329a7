"""Workers on several hosts: network namespaces on a bridge, one PostgreSQL, a host killed.

The namespace tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN), ``ip`` and ``initdb``; without
them they skip saying what is missing, except under ``CI=true``, where the machine has them.
Each checks afterwards that no namespace, link or cluster of the run is left.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runs import MANIFEST, Manifest, RunStatus
from taskqueue import QueueConfig
from tests.cli.test_cli import _env
from workloads import hosts
from workloads.errors import ParameterError
from workloads.hosts import HostNetwork, HostsUnavailableError, leftovers, missing_for_hosts
from workloads.runner import execute, plan_run
from workloads.stress import StressParams


def _clusters() -> set[str]:
    """Command lines of running throwaway clusters listening on a hosts' bridge."""
    done = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True)
    return {
        line
        for line in done.stdout.splitlines()
        if "queueprof-pg-" in line and f"listen_addresses={hosts.SUBNET_PREFIX}." in line
    }


@pytest.fixture
def namespaces() -> Iterator[None]:
    """Skip (fail under CI=true) without what network namespaces need; afterwards, check
    that the test left no namespace or link of its own process."""
    problem = missing_for_hosts()
    if problem is None:
        from taskqueue.pgadmin import find_initdb

        if find_initdb() is None:
            problem = "no initdb on PATH or in /usr/lib/postgresql/*/bin (install postgresql)"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"hosts in network namespaces are required under CI=true: {problem}")
        pytest.skip(f"hosts in network namespaces: {problem}")
    before = set(leftovers())
    clusters = _clusters()
    yield
    assert set(leftovers()) - before == set(), "namespaces or links left behind"
    assert _clusters() - clusters == set(), "a throwaway cluster left running"


def test_without_ip_or_root_the_error_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a machine with no `ip` on PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    if sys.platform.startswith("linux"):
        problem = missing_for_hosts()
        assert problem is not None
        assert "`ip` command" in problem
        assert "iproute2" in problem
    # WHEN a hosts run is planned THEN it is a usage error naming it
    with pytest.raises(HostsUnavailableError, match="hosts in network namespaces"):
        plan_run(
            "stress",
            size="smoke",
            out_dir=tmp_path,
            params=("hosts=3", "workers=6"),
            queue="backend=postgresql://127.0.0.1/test",
        )
    # GIVEN `ip` but no capabilities (not root)
    monkeypatch.undo()
    monkeypatch.setattr(hosts.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(hosts, "_effective_capabilities", lambda: 0)
    if sys.platform.startswith("linux"):
        problem = missing_for_hosts()
        assert problem is not None
        assert "CAP_NET_ADMIN and CAP_SYS_ADMIN" in problem
        assert "run as root" in problem


def test_hosts_params_are_checked_against_mode_workers_and_backend(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="set mode=process"):
        StressParams(hosts=3, mode="async")
    with pytest.raises(ParameterError, match="at least one process per host"):
        StressParams(hosts=3, workers=2)
    with pytest.raises(ParameterError, match=r"needs --queue backend=postgresql"):
        StressParams(hosts=3, workers=6).check_queue(QueueConfig())
    StressParams(hosts=3, workers=6).check_queue(QueueConfig(backend="postgresql://h/db"))
    assert list(hosts.split(7, 3)) == [3, 2, 2]


def test_a_host_network_reaches_the_bridge_and_is_torn_down_on_error(namespaces: None) -> None:
    # GIVEN three hosts, and a TCP server on the bridge address
    def connect_kill_and_fail() -> None:
        with HostNetwork(3) as network:
            assert [h.name for h in network.hosts] == ["h0", "h1", "h2"]
            assert len({h.address for h in network.hosts}) == 3
            with socket.create_server((network.server_address, 0)) as server:
                port = server.getsockname()[1]
                # WHEN a process inside a host connects to it
                child = subprocess.Popen(
                    [
                        *("ip", "netns", "exec", network.hosts[1].netns, sys.executable, "-c"),
                        "import socket, time\n"
                        f"s = socket.create_connection(({network.server_address!r}, {port}), 5)\n"
                        "time.sleep(60)",
                    ]
                )
                server.settimeout(10)
                conn, (peer, _) = server.accept()
                conn.close()
            # THEN it came from that host's own address, and killing the host kills it
            assert peer == network.hosts[1].address
            assert child.pid in network.kill(network.hosts[1])
            assert child.wait(5) == -signal.SIGKILL
            assert network.hosts[0].pids() == []
            raise RuntimeError("the block failed")

    # AND an error in the block still removes everything (checked by the fixture)
    with pytest.raises(RuntimeError, match="the block failed"):
        connect_kill_and_fail()


def test_what_a_killed_run_left_is_removed_by_the_next(namespaces: None) -> None:
    # GIVEN a namespace and a bridge named for a process that no longer exists
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = f"qp-{gone.pid}-abc123-h0"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    subprocess.run(["ip", "link", "add", "qpbabc123", "type", "bridge"], check=True)
    # WHEN stale names are swept (as every HostNetwork does first)
    removed = hosts.remove_stale()
    # THEN both are gone, and live runs' names are kept
    assert set(removed) == {stale, "qpbabc123"}
    assert stale not in hosts.netns_names()
    assert "qpbabc123" not in hosts.link_names()


@pytest.mark.slow
def test_a_killed_host_loses_nothing_and_its_leases_are_reclaimed(
    tmp_path: Path, namespaces: None
) -> None:
    # GIVEN 6 worker processes over 3 hosts, one PostgreSQL on the bridge, a host SIGKILLed
    # once mid-run (bursts keep tasks in flight for the kill to catch)
    plan = plan_run(
        "stress",
        size="smoke",
        out_dir=tmp_path,
        run_id="hosts",
        params=(
            "hosts=3",
            "workers=6",
            "duration_s=4",
            "rate=100",
            "burst_every_s=1",
            "burst_tasks=300",
            "kill_every_s=1.5",
            "status_rate=20",
            "sleep_ms=10",
        ),
        queue="backend=postgresql://127.0.0.1/unused",
    )
    # WHEN it runs and drains
    outcome = execute(plan)
    # THEN the database's own audit found nothing lost and nothing completed twice
    assert outcome.status is RunStatus.COMPLETE, outcome.error
    result = outcome.result
    assert result.counters["lost"] == 0
    assert result.counters["duplicated"] == 0
    assert result.metrics["lost_tasks"] == 0
    assert result.metrics["duplicated_tasks"] == 0
    # AND one whole host was killed with tasks in flight: every process in its namespace
    assert result.counters["hosts_killed"] >= 1
    assert result.counters["processes_killed"] == 2 * result.counters["hosts_killed"]
    assert result.counters["kills_with_tasks_in_flight"] >= 1
    # AND its leases were reclaimed (timed) before its tasks finished elsewhere
    assert 0 < result.metrics["kill_reclaim_max_s"] <= result.metrics["recovery_max_s"]
    assert "kill_reclaim" in result.latencies
    # AND the figures are per host and per worker, adding up to the tasks done
    assert [s.settings["host"] for s in result.steps] == ["h0", "h1", "h2"]
    assert sum(s.counters["completed"] for s in result.steps) == result.counters["done"]
    # (a kill every 1.5 s of 4 s: one or two, on the same host or on two)
    killed = [s for s in result.steps if s.counters["times_killed"]]
    assert 1 <= len(killed) <= result.counters["hosts_killed"]
    for step in killed:  # each killed host's workers were started again, as a reboot
        # (named by the run's kill count: the second kill's replacements are h2r2-w0...)
        restarted = re.compile(rf"{step.settings['host']}r\d+-w\d+$")
        assert any(restarted.match(w.name) for w in step.workers), step.workers
    assert result.metrics["hosts"] == 3


@pytest.mark.slow
def test_sigterm_mid_run_tears_the_hosts_and_the_cluster_down(
    tmp_path: Path, namespaces: None
) -> None:
    # GIVEN a long hosts run from the real command
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queueprof",
            "run",
            "stress",
            "--size",
            "smoke",
            "--param",
            "hosts=3",
            "--param",
            "workers=3",
            "--param",
            "duration_s=120",
            "--queue",
            "backend=postgresql://127.0.0.1/unused",
            "--quiet",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    before = set(hosts.netns_names())
    try:
        # WHEN its hosts are up and working, and it gets SIGTERM
        deadline = time.monotonic() + 60
        while not set(hosts.netns_names()) - before or not _clusters():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the run made no hosts in 60 s"
            time.sleep(0.1)
        time.sleep(2.0)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    # THEN it ended interrupted, and left nothing (checked by the fixture)
    assert child.returncode == 130, out + err
    (manifest,) = (tmp_path / "traces").glob(f"*/{MANIFEST}")
    assert Manifest.from_json(manifest.read_bytes()).status is RunStatus.INTERRUPTED
