"""Hand-built profiles with known weights give exact shares, whatever format carries them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from analysis.attribution import Attribution, attribute, compare_attributions
from analysis.load.collapsed import load_collapsed
from analysis.load.pyinstrument_session import load_session
from analysis.load.speedscope import load_speedscope
from analysis.operations import Category
from analysis.profile import ThreadRole

from . import builders

PROFILES = [
    ("event loop (async-aware wall time)", builders.LOOP_SAMPLES),
    ("aiosqlite thread (shared)", builders.THREAD_SAMPLES),
]


def from_speedscope(tmp_path: Path) -> Attribution:
    path = builders.write_json(tmp_path / "p.speedscope.json", builders.speedscope(PROFILES))
    return attribute(load_speedscope(path), profiler="pyinstrument", source=path.name)


def from_collapsed(tmp_path: Path) -> Attribution:
    path = tmp_path / "p.collapsed.txt"
    path.write_text(
        builders.collapsed(
            [
                ('Process 1 Thread 1 "MainThread"', builders.LOOP_SAMPLES),
                (
                    'Process 1 Thread 2 "Thread-1 (_connection_worker_thread)"',
                    builders.THREAD_SAMPLES,
                ),
            ]
        )
    )
    return attribute(load_collapsed(path), profiler="py-spy", source=path.name)


def from_sessions(tmp_path: Path) -> Attribution:
    loop = builders.write_json(
        tmp_path / "loop.pyisession", builders.session(builders.LOOP_SAMPLES)
    )
    thread = builders.write_json(
        tmp_path / "thread.pyisession", builders.session(builders.THREAD_SAMPLES)
    )
    profiles = [
        load_session(loop, role=ThreadRole.EVENT_LOOP),
        load_session(thread, role=ThreadRole.SQLITE_THREAD),
    ]
    return attribute(profiles, profiler="pyinstrument", source=loop.name)


@pytest.mark.parametrize("build", [from_speedscope, from_collapsed, from_sessions])
def test_known_weights_give_exact_shares(tmp_path: Path, build: object) -> None:
    # GIVEN a profile whose samples' weights are known, in one of the three formats
    attribution = build(tmp_path)  # type: ignore[operator]
    # WHEN it is attributed THEN the event loop splits 4/2/1/2/1 of 10
    loop = attribution.role(ThreadRole.EVENT_LOOP)
    assert loop is not None
    assert loop.total == pytest.approx(10.0)
    assert {c.category: c.share for c in loop.categories} == pytest.approx(
        {
            Category.CLAIM: 0.4,
            Category.ENQUEUE: 0.2,
            Category.COMPLETE: 0.1,
            Category.IDLE: 0.2,
            Category.OTHER: 0.1,
        }
    )
    claim = loop.get(Category.CLAIM)
    assert claim is not None
    assert claim.wait == pytest.approx(3.0)
    assert claim.cpu == pytest.approx(1.0)
    assert claim.top_self[0].function == "[await]"
    assert claim.top_self[0].self_time == pytest.approx(3.0)
    assert {f.function: f.total_time for f in claim.top_total}["TaskQueue.claim"] == pytest.approx(
        4.0
    )
    # AND the connection thread: innermost operation frame wins (complete inside
    # complete_and_claim counts as complete), waiting for the next job is idle
    thread = attribution.role(ThreadRole.SQLITE_THREAD)
    assert thread is not None
    assert {c.category: c.wall for c in thread.categories} == pytest.approx(
        {
            Category.CLAIM: 3.0,
            Category.COMPLETE: 1.0,
            Category.ENQUEUE: 2.0,
            Category.OTHER: 1.0,
            Category.IDLE: 3.0,
        }
    )


def test_whole_process_samples_outside_the_loop_are_left_out(tmp_path: Path) -> None:
    # GIVEN a py-spy-like profile with one second of start-up outside the event loop
    samples = [*builders.LOOP_SAMPLES, ([("<module>", "cli.py"), ("import", "x.py")], 1.0)]
    path = builders.write_json(
        tmp_path / "s.json", builders.speedscope([('Process 1 Thread 1 ""', samples)])
    )
    # WHEN attributed as a whole-process profile
    loop = attribute(load_speedscope(path, whole_process=True), profiler="py-spy", source="s").role(
        ThreadRole.EVENT_LOOP
    )
    # THEN the second is excluded and the shares are those of the loop alone
    assert loop is not None
    assert loop.excluded == pytest.approx(1.0)
    assert loop.share(Category.CLAIM) == pytest.approx(0.4)


def test_speedscope_and_collapsed_rankings_agree(tmp_path: Path) -> None:
    a, b = from_speedscope(tmp_path), from_collapsed(tmp_path)
    agreement = compare_attributions(a, b, ThreadRole.EVENT_LOOP)
    assert agreement is not None
    assert agreement.agree
    assert agreement.ranking_a[:3] == (Category.ENQUEUE, Category.CLAIM, Category.COMPLETE)


def test_opposite_rankings_are_reported(tmp_path: Path) -> None:
    # GIVEN two profiles where claim and enqueue swap places by a wide margin
    def profile(claim: float, enqueue: float) -> Attribution:
        samples = [
            ([builders.LOOP, builders.RUN_FOREVER, builders.CLAIM], claim),
            ([builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE], enqueue),
        ] * 200  # many samples: the noise tolerance is small
        path = builders.write_json(
            tmp_path / f"{claim}.json", builders.speedscope([("event loop", samples)])
        )
        return attribute(load_speedscope(path), profiler=f"p{claim}", source=path.name)

    agreement = compare_attributions(profile(8, 2), profile(2, 8))
    # THEN the comparison names the pair and its shares
    assert agreement is not None
    assert not agreement.agree
    (disagreement,) = agreement.disagreements
    assert {disagreement.first, disagreement.second} == {Category.CLAIM, Category.ENQUEUE}
    assert dict(agreement.shares_a) == pytest.approx({Category.ENQUEUE: 0.2, Category.CLAIM: 0.8})


def test_speedscope_written_by_pyinstrument_wrapper_loads(tmp_path: Path) -> None:
    # The profilers' own builder writes what the loader reads.
    from formats.speedscope import FrameKey, SpeedscopeBuilder

    builder = SpeedscopeBuilder(name="t")
    builder.add_sampled(
        "event loop", [([FrameKey("TaskQueue.status", "taskqueue/queue.py", 3)], 0.5)]
    )
    builder.write(tmp_path / "b.json")
    (profile,) = load_speedscope(tmp_path / "b.json")
    assert profile.role is ThreadRole.EVENT_LOOP
    loop = attribute([profile], profiler="x", source="b").role(ThreadRole.EVENT_LOOP)
    assert loop is not None
    assert loop.share(Category.STATUS) == 1.0
    assert orjson.loads((tmp_path / "b.json").read_bytes())["profiles"][0]["weights"] == [0.5]


def test_every_store_operation_is_attributed_to_an_operation() -> None:
    # GIVEN every public method of the connection-thread Store, each one queue operation
    from analysis.operations import frame_category
    from analysis.profile import Frame
    from taskqueue.store import Store

    names = [n for n in vars(Store) if not n.startswith("_") and callable(getattr(Store, n))]
    # THEN a profiler sample inside any of them counts for an operation, not for "other"
    unmapped = [
        n for n in names if frame_category(Frame(f"Store.{n}", "taskqueue/store.py")) is None
    ]
    assert unmapped == []


def test_every_postgresql_operation_is_attributed_to_an_operation() -> None:
    # GIVEN every public coroutine of the PostgreSQL queue and of its store, each one queue
    # operation (a PostgreSQL run's event-loop time was all "other" and "idle/wait" without)
    from analysis.operations import frame_category
    from analysis.profile import Frame
    from taskqueue.pgqueue import PgTaskQueue
    from taskqueue.pgstore import PgStore

    lifecycle = {"open", "close", "where"}
    unmapped = []
    for cls, file in ((PgTaskQueue, "taskqueue/pgqueue.py"), (PgStore, "taskqueue/pgstore.py")):
        for name, value in vars(cls).items():
            if name.startswith("_") or name in lifecycle or not callable(value):
                continue
            if frame_category(Frame(f"{cls.__name__}.{name}", file)) is None:
                unmapped.append(f"{cls.__name__}.{name}")
    # THEN a profiler sample inside any of them counts for an operation, not for "other"
    assert unmapped == []
