"""The speedscope writer and validator, on hand-built profiles."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from formats.speedscope import SCHEMA_URL, FrameKey, SpeedscopeBuilder, validate


def _two_thread_file(tmp_path: Path) -> dict:
    builder = SpeedscopeBuilder(name="t")
    a, b, c = FrameKey("main", "m.py", 1), FrameKey("claim", "q.py", 10), FrameKey("_rows")
    builder.add_sampled("loop", [([a, b], 0.5), ([a], 0.25)])
    builder.add_sampled("thread", [([c], 1.0)])
    builder.write(tmp_path / "p.json")
    return orjson.loads((tmp_path / "p.json").read_bytes())


def test_builder_interns_frames_and_writes_a_valid_file(tmp_path: Path) -> None:
    # GIVEN two profiles sharing no frames WHEN written
    document = _two_thread_file(tmp_path)
    # THEN frames are interned once, weights sum to endValue, and it validates
    assert document["$schema"] == SCHEMA_URL
    assert [f["name"] for f in document["shared"]["frames"]] == ["main", "claim", "_rows"]
    loop = document["profiles"][0]
    assert loop["samples"] == [[0, 1], [0]]
    assert loop["endValue"] == pytest.approx(0.75)
    assert validate(document) == []


def test_empty_profile_is_still_valid(tmp_path: Path) -> None:
    builder = SpeedscopeBuilder(name="empty")
    builder.add_sampled("loop", [])
    assert validate(builder.to_dict()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update({"$schema": "x"}), "$schema"),
        (lambda d: d["profiles"][0]["weights"].pop(), "1 weights"),
        (lambda d: d["profiles"][0]["samples"].append([99]), "out of range"),
        (lambda d: d.update({"profiles": []}), "profiles is missing or empty"),
        (lambda d: d["profiles"][0].update({"type": "weird"}), "unknown type"),
        (lambda d: d.pop("shared"), "shared.frames"),
    ],
)
def test_validator_names_each_problem(tmp_path: Path, mutate, expected: str) -> None:
    document = _two_thread_file(tmp_path)
    mutate(document)
    problems = validate(document)
    assert any(expected in p for p in problems), problems


def _evented(events: list[dict]) -> dict:
    return {
        "$schema": SCHEMA_URL,
        "shared": {"frames": [{"name": "a"}, {"name": "b"}]},
        "profiles": [
            {
                "type": "evented",
                "name": "e",
                "unit": "none",
                "startValue": 0,
                "endValue": 10,
                "events": events,
            }
        ],
    }


def test_evented_profiles_must_balance_nest_and_be_ordered() -> None:
    good = [
        {"type": "O", "frame": 0, "at": 0},
        {"type": "O", "frame": 1, "at": 1},
        {"type": "C", "frame": 1, "at": 2},
        {"type": "C", "frame": 0, "at": 3},
    ]
    assert validate(_evented(good)) == []
    crossed = [good[0], good[1], {"type": "C", "frame": 0, "at": 2}]
    assert "not the innermost" in validate(_evented(crossed))[0]
    unclosed = good[:2]
    assert "never closed" in validate(_evented(unclosed))[0]
    backwards = [good[0], {"type": "C", "frame": 0, "at": -1}]
    assert "out of order" in validate(_evented(backwards))[0]
