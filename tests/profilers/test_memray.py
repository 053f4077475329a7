"""memray wrapper: capture, offline reports, stack stats."""

from __future__ import annotations

import orjson

from .conftest import RunUnder


def test_capture_opens_with_filereader_and_reports_render_offline(run_under: RunUnder) -> None:
    import memray

    # GIVEN a small workload WHEN run under memray (aggregated, the default)
    profiler = run_under("memray", [])
    artifacts = profiler.finish()
    run_dir = profiler.run_dir
    # THEN the capture opens with memray's reader and has a peak
    reader = memray.FileReader(run_dir / "memray.bin")
    assert reader.metadata.peak_memory > 0
    reader.close()
    # AND the flame graph exists without CDN scripts
    html = (run_dir / "memray-flamegraph.html").read_text()
    assert '<script src="http' not in html
    assert "cdn.jsdelivr" not in html
    # AND no leak page: without Python-allocator tracing memray's own page says it misleads;
    # the manifest says why it is missing and how to get it
    assert not (run_dir / "memray-leaks.html").exists()
    (problem,) = profiler.manifest()["problems"]
    assert "trace_python_allocators=true" in problem
    # AND the stats name stacks from the queue's own code
    stats = orjson.loads((run_dir / "memray-stats.json").read_bytes())
    assert stats["peak_memory_bytes"] == profiler.manifest()["summary"]["peak_memory_bytes"]
    files = {frame[1] for entry in stats["peak_by_stack"]["stacks"] for frame in entry["stack"]}
    assert any(f.endswith("taskqueue/store.py") for f in files), files
    assert {a.path for a in artifacts} >= {"memray.bin", "memray-stats.json"}


def test_full_mode_capture(run_under: RunUnder) -> None:
    profiler = run_under("memray", ["mode=full"])
    profiler.finish()
    assert profiler.manifest()["summary"]["file_format"] == "full"


def test_leak_page_with_python_allocators_traced(run_under: RunUnder) -> None:
    # GIVEN Python-allocator tracing WHEN the run ends THEN the leak page is written, offline,
    # without memray's banner that its results are misleading
    profiler = run_under("memray", ["trace_python_allocators=true"])
    artifacts = profiler.finish()
    assert "memray-leaks.html" in {a.path for a in artifacts}
    html = (profiler.run_dir / "memray-leaks.html").read_text()
    assert "misleading results" not in html
    assert "cdn.jsdelivr" not in html
    assert "problems" not in profiler.manifest()
