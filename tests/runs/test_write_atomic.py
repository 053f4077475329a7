"""write_atomic: whole files only, with the mode any new file of the process gets."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runs import write_atomic


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask the test changes."""
    saved = os.umask(0o022)
    yield
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_file_gets_0666_less_the_umask(
    tmp_path: Path, umask: None, mask: int, mode: int
) -> None:
    # GIVEN a umask WHEN a file is written, new and then over an old one
    os.umask(mask)
    path = tmp_path / "report.md"
    write_atomic(path, b"one")
    first = stat.S_IMODE(path.stat().st_mode)
    write_atomic(path, b"two")
    # THEN both times it has the umask's mode and the new content, and no temp file is left
    assert (first, stat.S_IMODE(path.stat().st_mode)) == (mode, mode)
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    # GIVEN an old file WHEN writing a new one fails (a value that is not bytes)
    path = tmp_path / "findings.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    # THEN the old file is whole and the temp file is gone
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]


def test_a_write_that_fails_names_the_file_it_was_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # write() and fsync() raise an OSError that names no file: a full disk at the end of a
    # run read "No space left on device" without saying which file.
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "schema.sql"
    with pytest.raises(OSError, match="No space left") as caught:
        write_atomic(target, b"x")
    assert caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind
