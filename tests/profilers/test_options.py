"""``ProfilerOptions.describe``: what ``queueprof list`` shows of every profiler's options."""

from __future__ import annotations

import dataclasses

import pytest

from profilers import REGISTRY
from profilers.memray_wrapper import MemrayOptions


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_option_is_described_with_its_default_and_help(name: str) -> None:
    options_type = REGISTRY[name].options_type
    described = options_type.describe()
    assert [spec.name for spec in described] == [f.name for f in dataclasses.fields(options_type)]
    defaults = dataclasses.asdict(options_type())
    for spec in described:
        assert spec.default == defaults[spec.name]
        assert spec.help, f"{name} option {spec.name} has no docstring"
        assert "\n" not in spec.help


def test_choices_are_shown_as_the_type() -> None:
    mode = next(spec for spec in MemrayOptions.describe() if spec.name == "mode")
    assert mode.type_name == "aggregated|full"
    assert mode.help.startswith("``aggregated`` keeps sizes per stack")
