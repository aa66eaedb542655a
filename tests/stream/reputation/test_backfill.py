"""Reviews stored before the reputation migrations existed are backfilled into
``complaint_minute`` and ``negative_keyword_minute`` exactly once, on both backends."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stream.config import WorkerConfig
from stream.sink.connection import connect
from stream.sink.migrations import migrate, migrations_dir
from stream.sink.store import REVIEW_COLUMNS, ReviewStore, review_values
from tests.stream.reputation.scenario import COMPLAINT_TEXT, review_row

pytestmark = pytest.mark.clickhouse


@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_backfill_of_existing_reviews(
    backend: str, make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    sink_only = tmp_path / "sink-migrations"
    sink_only.mkdir()
    for path in migrations_dir().glob("000*.sql"):  # 0001-0009: the sink's own
        shutil.copy(path, sink_only / path.name)
    now = datetime.now(UTC)
    before = [
        review_row(
            f"old{i}", "P1", "手机", "negative", now - timedelta(minutes=i), text=COMPLAINT_TEXT
        )
        for i in range(3)
    ]
    after = [review_row("new0", "P1", "手机", "negative", now, text=COMPLAINT_TEXT)]

    ch = connect(make_config(clickhouse_backend=backend).clickhouse)
    try:
        migrate(ch, sink_only)
        # as the store wrote them before 0020 added the token-count columns
        old = REVIEW_COLUMNS[: REVIEW_COLUMNS.index("tokens")]
        ch.insert("reviews", old, [review_values(row)[: len(old)] for row in before])
        applied = migrate(ch)  # the reputation migrations, backfill included
        assert "0013_complaint_minute_backfill" in applied
        ReviewStore(ch).write_reviews(after)  # through the new materialized view
        rows = ch.query(
            "SELECT keyword, uniqExactMerge(reviews) FROM complaint_minute "
            "WHERE product_id = 'P1' GROUP BY keyword ORDER BY keyword"
        )
        assert sorted(rows) == sorted([("漏水", 4), ("质量差", 4), ("退货", 4)])
        # Running the backfill statement again changes nothing (uniqExact states).
        backfill = (migrations_dir() / "0013_complaint_minute_backfill.sql").read_text()
        ch.execute("\n".join(line for line in backfill.splitlines() if not line.startswith("--")))
        again = ch.query(
            "SELECT uniqExactMerge(reviews) FROM complaint_minute WHERE product_id = 'P1'"
        )
        assert again == [(4,)]
        # The alert engine's keyword table (0030-0032) is backfilled the same way.
        assert "0032_negative_keyword_minute_backfill" in applied
        curated = ch.query(
            "SELECT keyword, uniqExactMerge(reviews) FROM negative_keyword_minute "
            "WHERE product_id = 'P1' AND curated = 1 GROUP BY keyword ORDER BY keyword"
        )
        assert sorted(curated) == sorted([("漏水", 4), ("质量差", 4), ("退货", 4)])
        assert ch.query(
            "SELECT uniqExactMerge(reviews) FROM negative_keyword_minute WHERE product_id = 'P1'"
        ) == [(4,)]
    finally:
        ch.close()
