"""`utils.fs.remove_stale_temporaries`: the temporaries of killed writers go, nothing else does."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import pytest

from openfl_cli.utils.fs import TEMPORARY_NAME, atomic_writer, remove_stale_temporaries


def test_only_stale_temporaries_are_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save, logs = tmp_path / "save", tmp_path / "logs"
    save.mkdir()
    logs.mkdir()
    stale = [save / ".init.pbuf.abc.tmp", save / ".last.pbuf.k2_9xq0z.tmp", logs / ".metrics.jsonl.zz.tmp"]
    for index, path in enumerate(stale):
        path.write_bytes(b"x" * (10 + index))
    kept = [
        save / "init.pbuf",  # a normal file
        save / ".init.pbuf.abc.tmp.keep",
        save / "init.pbuf.abc.tmp",  # no leading dot
        save / ".init.pbuf.ABC.tmp",  # not mkstemp's alphabet
        save / ".tmp",
        save / ".init.pbuf.lock",
    ]
    for path in kept:
        path.write_bytes(b"keep")
    (save / "sub").mkdir()
    nested = save / "sub" / ".init.pbuf.abc.tmp"  # subfolders are not searched
    nested.write_bytes(b"keep")
    target = save / "elsewhere"
    target.write_bytes(b"keep")
    link = save / ".best.pbuf.abc.tmp"
    link.symlink_to(target)  # a link is not a writer's file
    directory = save / ".dir.abc.tmp"
    directory.mkdir()

    with caplog.at_level(logging.WARNING, logger="openfl_cli.utils.fs"):
        removed = remove_stale_temporaries([save, logs, save, tmp_path / "missing"])

    assert sorted(removed) == sorted((path, 10 + index) for index, path in enumerate(stale))
    assert not any(path.exists() for path in stale)
    assert all(path.read_bytes() == b"keep" for path in [*kept, nested, target])
    assert link.is_symlink() and directory.is_dir()
    assert "removed a stale temporary file" in caplog.text
    assert f"{save / '.init.pbuf.abc.tmp'} (10 bytes)" in caplog.text


def test_a_temporary_that_a_live_writer_holds_stays(tmp_path: Path) -> None:
    held = tmp_path / ".init.pbuf.abc.tmp"
    held.write_bytes(b"in progress")
    fd = os.open(held, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert remove_stale_temporaries([tmp_path]) == []
        assert held.exists()
    finally:
        os.close(fd)
    assert remove_stale_temporaries([tmp_path]) == [(held, 11)]


def test_a_write_in_progress_is_locked_and_named_as_the_cleanup_expects(tmp_path: Path) -> None:
    target = tmp_path / "last.pbuf"
    with atomic_writer(target) as handle:
        handle.write(b"partial")
        temporaries = [path for path in tmp_path.iterdir() if path.name != "last.pbuf"]
        assert len(temporaries) == 1 and TEMPORARY_NAME.match(temporaries[0].name)
        assert remove_stale_temporaries([tmp_path]) == []  # the writer holds it
    assert target.read_bytes() == b"partial"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.pbuf"]
