"""The one key=value parser speaks the same words for every layer that uses it."""

from __future__ import annotations

import pytest

from profilers.pyinstrument_wrapper import PyinstrumentOptions
from runs import keyvalue
from taskqueue import InvalidArgumentError, QueueConfig
from workloads.errors import ParameterError
from workloads.throughput import ThroughputParams


def test_pairs_normalise_keys_and_strip_values() -> None:
    assert list(keyvalue.pairs(["claim-batch = 5 "])) == [
        keyvalue.Pair("claim_batch", "5", "claim-batch = 5 ")
    ]


def test_an_item_without_equals_names_the_item() -> None:
    with pytest.raises(keyvalue.KeyValueError) as caught:
        list(keyvalue.pairs(["claim_batch"]))
    assert caught.value.item == "claim_batch"


@pytest.mark.parametrize(("word", "value"), [("yes", True), ("ON", True), ("0", False)])
def test_booleans_mean_the_same_everywhere(word: str, value: bool) -> None:
    assert keyvalue.coerce(bool, word) is value
    assert QueueConfig.parse(f"record_timings={word}").record_timings is value


def test_each_layer_keeps_its_own_error() -> None:
    with pytest.raises(InvalidArgumentError, match="expected key=value"):
        QueueConfig.parse("claim_batch")
    with pytest.raises(ParameterError, match="expected key=value"):
        ThroughputParams().with_overrides(["tasks"])
    with pytest.raises(ParameterError, match="expected a whole number"):
        ThroughputParams().with_overrides(["tasks=many"])
    with pytest.raises(ValueError, match="expected key=value"):
        PyinstrumentOptions.parse(["interval"])


def test_every_layer_refuses_a_key_given_twice() -> None:
    # GIVEN the same key twice WHEN any of the three layers parses it THEN neither value
    # is taken: the error names the second item and the first
    with pytest.raises(InvalidArgumentError, match="claim_batch is already set by 'claim_batch=1'"):
        QueueConfig.parse("claim_batch=1,claim_batch=5")
    with pytest.raises(ParameterError, match="tasks is already set by 'tasks=1'"):
        ThroughputParams().with_overrides(["tasks=1", "tasks=5"])
    with pytest.raises(ValueError, match=r"interval is already set by 'interval=0\.01'"):
        PyinstrumentOptions.parse(["interval=0.01", "interval=0.02"])


def test_every_layer_refuses_an_item_without_a_key() -> None:
    with pytest.raises(InvalidArgumentError, match="a key before '='"):
        QueueConfig.parse("=5")
    with pytest.raises(ParameterError, match="a key before '='"):
        ThroughputParams().with_overrides(["=5"])
    with pytest.raises(ValueError, match="a key before '='"):
        PyinstrumentOptions.parse(["=0.01"])


def test_a_key_written_with_dashes_and_underscores_is_still_one_key() -> None:
    with pytest.raises(InvalidArgumentError, match="claim_batch is already set by 'claim-batch=1'"):
        QueueConfig.parse("claim-batch=1,claim_batch=5")


@pytest.mark.parametrize("text", ["claim_batch=1,,ack_batch=2", "claim_batch=1,", ",claim_batch=1"])
def test_an_empty_item_is_refused_not_dropped(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="none of them empty"):
        QueueConfig.parse(text)
    with pytest.raises(ParameterError, match="none of them empty"):
        ThroughputParams().with_overrides(["worker_counts=1,,5"])
    assert keyvalue.split_list("  ") == []  # no --queue at all is not an empty item


def test_given_items_replace_the_defaults_of_the_same_key() -> None:
    # GIVEN defaults (a tox env's sizes) and a user's items, one of them for the same key
    defaults = ["worker_counts=5", "tasks=10000"]
    # WHEN they are put together THEN the user's value replaces the default, dashes and
    # underscores alike, and the other defaults stay, before the user's items
    assert keyvalue.overridden(defaults, ["tasks=300"]) == ["worker_counts=5", "tasks=300"]
    assert keyvalue.overridden(defaults, ["worker-counts=1"]) == ["tasks=10000", "worker-counts=1"]
    # AND items that do not parse are kept for the parser to name
    assert keyvalue.overridden(defaults, ["oops"]) == [*defaults, "oops"]
    # AND defaults that repeat a key among themselves are still refused by the parser
    with pytest.raises(keyvalue.KeyValueError, match="each key once"):
        list(keyvalue.pairs(keyvalue.overridden(["a=1", "a=2"], [])))


def test_a_postgres_url_with_several_hosts_is_one_queue_option() -> None:
    # GIVEN a URL naming two hosts (libpq's form) and a query with a comma, between options
    text = (
        "backend=postgresql://app@10.0.0.1:5432,10.0.0.2:5432/queues?options=-c%20x=1,pg_pool=5,"
        "claim_batch=10"
    )
    # WHEN it is parsed THEN the URL keeps its commas and the other options are their own
    config = QueueConfig.parse(text)
    assert config.backend == "postgresql://app@10.0.0.1:5432,10.0.0.2:5432/queues?options=-c%20x=1"
    assert (config.pg_pool, config.claim_batch) == (5, 10)
    # AND a part that starts no pair still fails, naming the value it ended up in
    with pytest.raises(InvalidArgumentError, match=r"'1,oops'"):
        QueueConfig.parse("claim_batch=1,oops")
