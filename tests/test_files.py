"""Atomic writes: a reader sees the old file or the whole new one, and a failed write leaves no trace."""

from __future__ import annotations

import pytest

from multilevel.results.files import write_atomic


class Failure(Exception):
    pass


def failing_writer(tmp):
    tmp.write_text("half a file")
    raise Failure("disk full")


def test_a_write_creates_the_file_and_its_directories_and_nothing_else(tmp_path):
    target = tmp_path / "a" / "b" / "out.csv"
    seen = []
    assert write_atomic(target, lambda tmp: (seen.append(tmp), tmp.write_text("x,y\n"))) == target
    assert target.read_text() == "x,y\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]
    (tmp,) = seen
    assert tmp.parent == target.parent and tmp.name.startswith(".out.csv.") and tmp.name.endswith(".tmp")


def test_a_failing_writer_leaves_neither_the_target_nor_a_temporary_file(tmp_path):
    with pytest.raises(Failure, match="disk full"):
        write_atomic(tmp_path / "out.csv", failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_writer_leaves_an_existing_target_untouched(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old content")
    with pytest.raises(Failure):
        write_atomic(target, failing_writer)
    assert target.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_an_interrupt_is_cleaned_up_too(tmp_path):
    def interrupted(tmp):
        tmp.write_bytes(b"\x00" * 10)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "fit.nc", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_a_successful_write_replaces_an_existing_target(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old content")
    write_atomic(str(target), lambda tmp: tmp.write_text("new content"))
    assert target.read_text() == "new content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_the_file_gets_the_permissions_of_any_new_file(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("")
    target = write_atomic(tmp_path / "out.csv", lambda tmp: tmp.write_text("x"))
    assert target.stat().st_mode == plain.stat().st_mode
