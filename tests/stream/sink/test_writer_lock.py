"""One process per chdb directory: a second process gets a clear error naming the directory
and the server backend; the lock goes with its holder, even after ``kill -9``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stream.config import PROJECT_ROOT
from stream.sink.embedded import EmbeddedClickHouse
from stream.sink.writer_lock import LOCK_NAME, DirectoryInUse

pytestmark = pytest.mark.clickhouse

HOLD = textwrap.dedent(
    """
    import sys, time
    from stream.sink.embedded import EmbeddedClickHouse
    ch = EmbeddedClickHouse(sys.argv[1], "held")
    ch.execute("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree ORDER BY x")
    ch.insert("t", ["x"], [[1]])
    print("holding", flush=True)
    time.sleep(120)
    """
)

OPEN = textwrap.dedent(
    """
    import sys
    from stream.sink.embedded import EmbeddedClickHouse
    ch = EmbeddedClickHouse(sys.argv[1], "held")
    print(ch.query("SELECT count() FROM t")[0][0])
    ch.close()
    """
)


def python(code: str, directory: Path, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, str(directory)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def test_a_second_process_is_refused_until_the_holder_is_killed(chdb_path: Path) -> None:
    holder = python(HOLD, chdb_path)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        second = python(OPEN, chdb_path)
        _, err = second.communicate(timeout=60)
        assert second.returncode != 0
        last = err.strip().splitlines()[-1]
        assert last.startswith("stream.sink.writer_lock.DirectoryInUse")
        assert str(chdb_path.resolve()) in last
        assert f"pid {holder.pid}" in last
        assert "needs the server backend" in last and "CLICKHOUSE_BACKEND=native" in last
    finally:
        holder.kill()  # kill -9: no clean-up runs, the lock file stays behind
        holder.wait(timeout=30)
    assert (chdb_path / LOCK_NAME).exists()
    after = python(OPEN, chdb_path)
    out, err = after.communicate(timeout=60)
    assert after.returncode == 0, err
    assert out.strip() == "1"  # the holder's row survived and the directory opened


def test_this_process_shares_its_own_lock_and_releases_it(chdb_path: Path) -> None:
    first = EmbeddedClickHouse(chdb_path, "a")
    second = EmbeddedClickHouse(chdb_path, "b")  # same process, same directory: fine
    first.close()
    first.close()  # twice is harmless and does not drop the other session's hold
    probe = python(
        OPEN.replace('"held"', '"b"').replace("SELECT count() FROM t", "SELECT 7"), chdb_path
    )
    _, err = probe.communicate(timeout=60)
    assert probe.returncode != 0 and "DirectoryInUse" in err  # still held by `second`
    second.close()
    probe = python(OPEN.replace("SELECT count() FROM t", "SELECT 7"), chdb_path)
    out, err = probe.communicate(timeout=60)
    assert probe.returncode == 0, err
    assert out.strip() == "7"


def test_the_error_names_the_directory_and_the_way_out(tmp_path: Path) -> None:
    error = DirectoryInUse(tmp_path, "pid 42: reviewpulse worker")
    assert str(tmp_path) in str(error) and "pid 42" in str(error)
    assert "Scale-out, i.e. more than one worker, needs the server backend" in str(error)
