"""Issue 16 item 11: files that cannot be read or written give exit 2 and a fix, not a traceback.

The read-only and full file systems are real tmpfs mounts where the tests may mount them
(root in a container or CI); elsewhere those tests skip and the monkeypatched ones still run.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import analysis.bundle
import analysis.output
from queueprof.bench import save_bench
from queueprof.cli import main
from runs import RunFolder
from runs.errors import OutputError

from .conftest import FIXTURE_RUN

SMOKE = ["run", "throughput", "--size", "smoke", "--quiet"]


def mount(target: Path, *options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", *options, str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a test file system here ({done.stderr.strip()})")


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points to unmount after the test."""
    mounted: list[Path] = []
    yield mounted
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=False)


def read_only_copy(source: Path, target: Path, mounted: list[Path]) -> Path:
    """``source`` bind-mounted read-only at ``target``."""
    mount(target, "--bind", str(source))
    mounted.append(target)
    mount(target, "-o", "remount,ro,bind")
    return target


def status_of(folder: Path) -> Any:
    return orjson.loads((folder / "manifest.json").read_bytes())["status"]


def test_targets_file_that_is_not_utf8_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_bytes(b'[throughput]\nnote = "\xff\xfe"\n')
    out = tmp_path / "traces"
    assert main([*SMOKE, "--targets", str(targets), "--out", str(out)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert not out.exists()


def test_out_under_a_file_is_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("x")
    assert main([*SMOKE, "--out", str(tmp_path / "a-file" / "traces")]) == 2
    err = capsys.readouterr().err
    assert "Not a directory" in err
    assert "--out" in err


def test_out_on_a_read_only_file_system_is_exit_2(
    tmp_path: Path, mounts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ro"
    mount(target, "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs")
    mounts.append(target)
    assert main([*SMOKE, "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Read-only file system" in err
    assert "--out" in err


def test_out_on_a_full_file_system_ends_the_folder_failed(
    tmp_path: Path, mounts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "full"
    mount(target, "-t", "tmpfs", "-o", "size=8k", "tmpfs")  # room for a manifest, no more
    mounts.append(target)
    assert main([*SMOKE, "--out", str(target)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    for folder in target.iterdir():  # none, or one that says how it ended
        assert status_of(folder) == "failed"


def test_full_disk_while_writing_results_marks_the_folder_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(self: RunFolder, result: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunFolder, "write_results", full)
    out = tmp_path / "traces"
    assert main([*SMOKE, "--out", str(out), "--run-id", "full"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert status_of(out / "full") == "failed"


def test_analyze_on_a_read_only_run_folder_says_to_pass_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(FIXTURE_RUN, tmp_path / "run"))

    def read_only(path: Path, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(analysis.output, "write_atomic", read_only)
    assert main(["analyze", str(run), "--format", "md"]) == 2
    err = capsys.readouterr().err
    assert "Read-only file system" in err
    assert "--out DIR" in err


def test_analyze_and_compare_on_a_mounted_read_only_run_folder(
    tmp_path: Path, mounts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source = Path(shutil.copytree(FIXTURE_RUN, tmp_path / "source" / "run")).parent
    run = read_only_copy(source, tmp_path / "ro", mounts) / "run"
    assert main(["analyze", str(run), "--format", "md"]) == 2
    assert main(["compare", str(run), str(run)]) == 2
    assert main(["report", str(run), "--bundle", str(run.parent / "bundle")]) == 2
    err = capsys.readouterr().err
    assert err.count("Read-only file system") == 3
    assert "--out DIR" in err
    out = tmp_path / "reports"
    assert main(["analyze", str(run), "--format", "md", "--out", str(out)]) == 0
    assert main(["compare", str(run), str(run), "--out", str(out)]) == 0
    assert (out / "report.md").is_file()
    assert (out / "comparison.md").is_file()


def test_bench_file_under_a_file_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*--save"):
        save_bench(tmp_path / "a-file" / "bench.json", {"schema_version": 1})


def test_full_disk_while_writing_an_artifact_names_it_and_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A file written at the end of the run before results.json (schema.sql here) failed the
    # run with exit 1 and "OSError: [Errno 28] No space left on device", naming no file.
    import workloads.schema

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(workloads.schema, "write_atomic", full)
    out = tmp_path / "traces"
    assert main([*SMOKE, "--out", str(out), "--run-id", "full"]) == 2
    err = capsys.readouterr().err
    assert "schema.sql" in err
    assert "free space under" in err
    assert status_of(out / "full") == "failed"


def test_a_bundle_that_cannot_fit_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(FIXTURE_RUN, tmp_path / "run"))
    out = tmp_path / "bundle"

    def nearly_full(path: Path) -> Any:
        return shutil._ntuple_diskusage(10 << 30, 10 << 30, 1000)  # type: ignore[attr-defined]

    monkeypatch.setattr(analysis.bundle.shutil, "disk_usage", nearly_full)
    assert main(["report", str(run), "--bundle", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err
    assert "0.0 MiB free" in err
    assert "bundle fewer runs" in err
    assert not out.exists()
    assert not (tmp_path / "bundle.zip").exists()


def test_a_bundle_that_fails_halfway_takes_away_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(FIXTURE_RUN, tmp_path / "run"))
    out = tmp_path / "bundle"
    out.mkdir()  # an empty folder named by the user stays, emptied
    copy = analysis.bundle._copy
    calls = []

    def full_on_the_third(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[1]))
        return copy(*args, **kwargs)

    monkeypatch.setattr(analysis.bundle, "_copy", full_on_the_third)
    assert main(["report", str(run), "--bundle", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert len(calls) == 3
    assert out.is_dir()
    assert list(out.iterdir()) == []
    assert not (tmp_path / "bundle.zip").exists()
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in FIXTURE_RUN.iterdir())


def test_a_bundle_never_replaces_a_zip_of_the_same_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(FIXTURE_RUN, tmp_path / "run"))
    (tmp_path / "bundle.zip").write_bytes(b"someone's zip")
    assert main(["report", str(run), "--bundle", str(tmp_path / "bundle")]) == 2
    assert "bundle.zip exists beside it" in capsys.readouterr().err
    assert (tmp_path / "bundle.zip").read_bytes() == b"someone's zip"
    assert not (tmp_path / "bundle").exists()


def test_a_bundle_onto_a_small_real_file_system_leaves_it_empty(
    tmp_path: Path, mounts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(FIXTURE_RUN, tmp_path / "run"))
    small = tmp_path / "small"
    mount(small, "-t", "tmpfs", "-o", "size=16k", "tmpfs")
    mounts.append(small)
    assert main(["report", str(run), "--bundle", str(small / "bundle")]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err or "No space left on device" in err
    assert list(small.iterdir()) == []
