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
