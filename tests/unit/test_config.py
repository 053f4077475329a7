"""QueueConfig: strategies as values; parse errors that list the valid choices."""

from __future__ import annotations

import dataclasses

import pytest

from taskqueue import ClaimStyle, ConnectionMode, InvalidArgumentError, QueueConfig, Wakeup


def test_defaults_are_the_documented_ones() -> None:
    config = QueueConfig()
    assert config.connection is ConnectionMode.SHARED
    assert config.claim_style is ClaimStyle.RETURNING
    assert (config.claim_batch, config.ack_batch, config.lease_s) == (100, 100, 30.0)
    assert config.claim_budget_ms == 10.0
    assert config.wakeup == Wakeup("notify", 50.0)
    assert (config.record_timings, config.capture_sql) == (False, False)


def test_parse_reads_the_cli_form_on_top_of_a_base() -> None:
    base = QueueConfig(lease_s=5.0)
    config = QueueConfig.parse(
        "claim-batch=100, connection=per-worker,claim_style=immediate,"
        "wakeup=poll:10,record_timings=yes,retry_backoff_s=0.25",
        base,
    )
    assert config.connection is ConnectionMode.PER_WORKER
    assert config.claim_style is ClaimStyle.IMMEDIATE
    assert config.claim_batch == 100
    assert config.wakeup == Wakeup("poll", 10.0)
    assert config.record_timings is True
    assert config.retry_backoff_s == 0.25
    assert config.lease_s == 5.0  # from the base
    assert QueueConfig.parse("") == QueueConfig()


def test_to_dict_round_trips_through_from_dict() -> None:
    # Plain strings are accepted for enums (JSON, dataclasses.replace); the annotations say enum.
    config = QueueConfig(
        connection="per-worker",  # type: ignore[arg-type]
        claim_style="deferred",  # type: ignore[arg-type]
        wakeup="notify:20",  # type: ignore[arg-type]
    )
    data = config.to_dict()
    assert data["connection"] == "per-worker"
    assert data["claim_style"] == "deferred"
    assert data["wakeup"] == "notify:20"
    assert QueueConfig.from_dict(data) == config


@pytest.mark.parametrize(
    ("text", "listed"),
    [
        pytest.param("claim_style=fast", "returning, immediate, deferred", id="claim-style"),
        pytest.param("connection=pool", "shared, per-worker", id="connection"),
        pytest.param("wakeup=sometimes", "'notify', 'notify:<ms>' or 'poll:<ms>'", id="wakeup"),
        pytest.param("wakeup=poll", "'poll:10'", id="poll-without-interval"),
        pytest.param("wakeup=poll:-5", "must be > 0", id="poll-negative"),
        pytest.param("colour=red", "valid: connection, dispatch, claim_style", id="unknown-key"),
        pytest.param("claim-batch", "expected key=value", id="no-value"),
        pytest.param("claim_batch=0", "1..10000", id="batch-zero"),
        pytest.param("ack_batch=many", "expected a whole number", id="batch-text"),
        pytest.param("lease_s=-1", "lease_s=-1.0: must be > 0", id="negative-lease"),
        pytest.param("lease_s=soon", "expected a number", id="lease-text"),
        pytest.param("retry_backoff_s=-1", "must be >= 0", id="negative-backoff"),
        pytest.param("record_timings=maybe", "expected true or false", id="bool"),
        pytest.param("cpu_affinity=all", "'off', 'colocate' or 'cpu:N'", id="affinity"),
    ],
)
def test_parse_errors_name_the_option_and_the_valid_choices(text: str, listed: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        QueueConfig.parse(text)
    message = str(caught.value)
    assert listed in message
    key = text.partition("=")[0].replace("-", "_")
    assert key in message.replace("-", "_")


def test_from_dict_lists_the_valid_keys() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown queue option.*colour.*valid: conn"):
        QueueConfig.from_dict({"colour": "red"})


def test_replace_with_a_bad_strategy_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="choose one of shared, per-worker"):
        dataclasses.replace(QueueConfig(), connection="many")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "lease_s=nan",
        "lease_s=inf",
        "claim_budget_ms=nan",
        "claim_budget_ms=inf",
        "retry_backoff_s=nan",
        "retry_backoff_s=inf",
        "busy_deadline_s=inf",
        "busy_backoff_max_ms=inf",
        "retry_backoff_max_s=inf",
        "wakeup=poll:inf",
        "busy_timeout_ms=99999999999999999999",
    ],
)
def test_non_finite_or_oversized_numbers_are_refused(text: str) -> None:
    # nan passes no comparison and inf every upper bound: both used to be accepted here and
    # fail the run later (exit 1, with a folder)
    with pytest.raises(InvalidArgumentError, match=r"finite number|0\.\.2,147,483,647"):
        QueueConfig.parse(text)


@pytest.mark.parametrize(
    "url", ["postgresql://bad:host:x/db", "postgresql://u:pw@h:99999/db", "postgres://a:1,b:x/db"]
)
def test_a_postgresql_url_with_a_port_that_is_not_a_number_is_refused_before_the_run(
    url: str,
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"port .* is not a number 1\.\.65535") as caught:
        QueueConfig.parse(f"backend={url}")
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:5432/test",
        "postgresql://u:p:w@127.0.0.1/test",
        "postgresql://[::1]:5432/test",
        "postgresql://h1:5432,h2:5433/db",
        "postgresql:///test?host=/var/run/postgresql",
    ],
)
def test_postgresql_urls_the_driver_reads_are_accepted(url: str) -> None:
    assert QueueConfig.parse(f"backend={url}").backend == url
