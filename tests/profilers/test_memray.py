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
    # AND both flame graphs exist without CDN scripts
    for name in ("memray-flamegraph.html", "memray-leaks.html"):
        html = (run_dir / name).read_text()
        assert '<script src="http' not in html
        assert "cdn.jsdelivr" not in html
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
