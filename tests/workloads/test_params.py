"""Workload parameters: overrides, validation messages, presets."""

from __future__ import annotations

import pytest

from workloads.errors import ParameterError
from workloads.memory import MemoryParams
from workloads.params import Size
from workloads.registry import WORKLOADS
from workloads.stress import StressParams
from workloads.throughput import ThroughputParams


def test_overrides_parse_by_field_type() -> None:
    params = ThroughputParams().with_overrides(
        ["worker_counts=2, 4", "tasks=10", "mode=process", "payload-bytes=64"]
    )
    assert params.worker_counts == (2, 4)
    assert params.tasks == 10
    assert params.mode == "process"
    assert params.payload_bytes == 64


def test_bool_params_take_true_and_false() -> None:
    assert MemoryParams().with_overrides(["trace_heap=false"]).trace_heap is False


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("workers=3", "unknown throughput parameter 'workers'; valid: worker_counts"),
        ("tasks=0", "parameter tasks=0 is out of range; valid: 1..10,000,000"),
        ("tasks=ten", "parameter tasks='ten': expected a whole number in 1..10,000,000"),
        ("worker_counts=1,99", "parameter worker_counts=1,99 is out of range; valid: 1..64"),
        ("mode=thread", "unknown choice 'thread'; valid: one of async, process"),
        ("task_type=", "unknown choice ''; valid: one of noop, sleep, cpu, alloc, fail"),
        ("tasks", "expected key=value"),
    ],
)
def test_bad_values_name_the_field_and_the_valid_range(item: str, message: str) -> None:
    with pytest.raises(ParameterError) as caught:
        ThroughputParams().with_overrides([item])
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_checks_across_fields_run_in_post_init() -> None:
    with pytest.raises(ParameterError, match="warmup_chunks=3 leaves 1 of chunks=4"):
        MemoryParams(chunks=4, warmup_chunks=3)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_workload_has_every_size_and_describes_its_params(name: str) -> None:
    workload = WORKLOADS[name]
    assert set(workload.sizes) == set(Size)
    for preset in workload.sizes.values():
        assert isinstance(preset, workload.params_type)
        assert type(preset).from_dict(preset.to_dict()) == preset
    specs = workload.params_type.specs()
    assert specs
    assert all(spec.help for _, _, spec, _ in specs)


@pytest.mark.parametrize("item", [f"seed={2**64}", f"seed={2**63}", f"chunks={2**64 + 1}"])
def test_whole_numbers_beyond_64_bits_are_refused(item: str) -> None:
    # They used to pass and crash while the manifest (JSON, 64-bit integers) was written.
    params = StressParams() if item.startswith("seed") else MemoryParams()
    with pytest.raises(ParameterError, match="fits in 64 bits"):
        params.with_overrides([item])
