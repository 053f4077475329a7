"""diffgraph: call paths merged per run, deltas coloured, names escaped, real profiles diffed."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.diffgraph import (
    diff_profiles,
    diff_speedscope_files,
    function_changes,
    layout,
    render_html,
)
from analysis.errors import ProfileDiffError
from analysis.load.runfolder import open_run
from analysis.profile import Frame, SampledProfile, ThreadRole

EVIL = "<script>alert('x')</script>"
FRAMES = (
    Frame("run_forever", "/a/asyncio/base_events.py", 1),
    Frame("TaskQueue.claim", "/a/taskqueue/queue.py", 10),
    Frame("TaskQueue.enqueue", "/b/taskqueue/queue.py", 20),
    Frame(EVIL, "/a/x/evil.py", 3),
)


def profile(weights: dict[tuple[int, ...], float]) -> SampledProfile:
    """One event-loop profile over :data:`FRAMES` with the given (stack -> seconds)."""
    return SampledProfile(
        name="event loop",
        role=ThreadRole.EVENT_LOOP,
        frames=FRAMES,
        stacks=list(weights),
        weights=list(weights.values()),
        unit="seconds",
    )


BASELINE = profile({(0, 1): 1.0, (0, 2): 1.0, (0, 3): 0.5})
CANDIDATE = profile({(0, 1): 3.0, (0, 2): 1.0, (0, 3): 0.5})


def boxes_by_leaf() -> dict[str, object]:
    diff = diff_profiles([BASELINE], [CANDIDATE])
    return {box.path[-1]: box for box in layout(diff)}


def test_time_is_merged_per_call_path() -> None:
    diff = diff_profiles([BASELINE], [CANDIDATE])
    assert diff.root.baseline == pytest.approx(2.5)
    assert diff.root.candidate == pytest.approx(4.5)
    (thread,) = diff.root.children
    assert thread.name == "event loop"
    (loop,) = thread.children
    # files are shortened to their last two parts, so checkouts in other places still match
    assert loop.name == "run_forever (asyncio/base_events.py)"
    claim = next(c for c in loop.children if c.name.startswith("TaskQueue.claim"))
    assert (claim.baseline, claim.candidate, claim.delta) == (1.0, 3.0, 2.0)


def test_a_planted_slower_path_is_red_and_the_unchanged_one_is_neutral() -> None:
    boxes = {
        box.path[-1].split(" (")[0]: box for box in layout(diff_profiles([BASELINE], [CANDIDATE]))
    }
    claim, enqueue = boxes["TaskQueue.claim"], boxes["TaskQueue.enqueue"]
    red, green, blue = (int(v) for v in claim.colour.removeprefix("rgb(")[:-1].split(","))
    assert red == 255
    assert green < 100
    assert blue < 100
    assert enqueue.colour == "rgb(238,232,213)"  # unchanged: neutral
    assert claim.width == pytest.approx(3.0 / 4.5)  # width: the candidate's time


def test_a_faster_path_is_blue() -> None:
    boxes = {
        box.path[-1].split(" (")[0]: box for box in layout(diff_profiles([CANDIDATE], [BASELINE]))
    }
    red, _green, blue = (int(v) for v in boxes["TaskQueue.claim"].colour[4:-1].split(","))
    assert blue == 255
    assert red < 100


def test_function_changes_rank_the_largest_first() -> None:
    changes = function_changes(diff_profiles([BASELINE], [CANDIDATE]))
    assert changes[0].name.startswith("TaskQueue.claim")
    assert changes[0].delta == pytest.approx(2.0)


def test_frame_names_are_escaped_in_the_html() -> None:
    page = render_html(diff_profiles([BASELINE], [CANDIDATE]), f"title {EVIL}")
    assert EVIL not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # ours, inline
    assert "src=" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_profiles_in_different_units_are_refused() -> None:
    other = SampledProfile("t", ThreadRole.OTHER_THREAD, FRAMES, [(0,)], [5.0], "samples")
    with pytest.raises(ProfileDiffError, match="units"):
        diff_profiles([BASELINE], [other])
    with pytest.raises(ProfileDiffError, match="no sampled profile"):
        diff_profiles([], [BASELINE])


def test_real_pyinstrument_profiles_diff(profiled_runs: tuple[Path, Path]) -> None:
    base, cand = (open_run(path).speedscope_profile() for path in profiled_runs)
    assert base is not None
    assert cand is not None
    diff = diff_speedscope_files(base, cand)
    assert diff.unit == "seconds"
    assert {child.name for child in diff.root.children} <= {str(r) for r in ThreadRole}
    assert "<svg" in render_html(diff, "real")
