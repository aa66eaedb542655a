"""``reviewpulse shadow``: clear errors for versions that cannot serve; status and promote on
real ClickHouse (both backends) with fixed shadow rows, accepting and refusing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from model.registry import current_version, read_shadow, start_shadow
from stream.cli import main
from stream.config import ClickHouseConfig, WorkerConfig
from stream.serving.compare import EXIT_NOT_PROMOTED
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.shadow import ShadowStore
from tests.stream.serving.registry import NAME, publish_broken, publish_copy


def registry_flags(registry: Path) -> list[str]:
    return ["--model-registry", str(registry), "--model-name", NAME]


def clickhouse_flags(config: ClickHouseConfig) -> list[str]:
    return [
        f"--{name.replace('_', '-')}={value}"
        for name, value in config.model_dump().items()
        if name != "clickhouse_password"
    ]


def shadow(registry: Path, *args: str) -> int:
    return main(["shadow", *args, *registry_flags(registry)])


# --- without services: the pointer and the checks ---------------------------------------


def test_start_checks_the_version_and_writes_the_pointer_stop_removes_it(
    registry: Path, capsys: pytest.CaptureFixture
) -> None:
    publish_copy(registry, "v2")
    assert shadow(registry, "start", "v2", "--share", "0.5") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["shadow"]["version"] == "v2"
    spec = read_shadow(registry, NAME)
    assert (spec.version, spec.share) == ("v2", 0.5)
    assert shadow(registry, "stop") == 0
    assert "shadow of v2 stopped" in capsys.readouterr().out
    assert read_shadow(registry, NAME) is None
    assert shadow(registry, "stop") == 0
    assert "no shadow was running" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("prepare", "args", "message"),
    [
        (None, ["start", "v9"], "model version 'v9' refused: .*has no version 'v9'"),
        (lambda r: publish_broken(r, "v2"), ["start", "v2"], "'v2' refused: cannot load"),
        (
            lambda r: publish_broken(r, "v2", how="missing"),
            ["start", "v2"],
            "'v2' refused: cannot load",
        ),
        (None, ["start", "v1"], "v1 is the served model"),
        (lambda r: publish_copy(r, "v2"), ["start", "v2", "--share", "0"], "--share"),
        (None, ["status"], "no shadow is running"),
        (None, ["promote"], "no shadow is running"),
    ],
    ids=["missing", "truncated", "no-weights", "served", "share", "status", "promote"],
)
def test_versions_that_cannot_be_used_are_clear_errors(
    registry: Path, prepare, args: list[str], message: str
) -> None:
    if prepare:
        prepare(registry)
    with pytest.raises(SystemExit, match=message):
        shadow(registry, *args)
    assert read_shadow(registry, NAME) is None
    assert current_version(registry, NAME) == "v1"


# --- with ClickHouse: status and promote on fixed shadow rows -----------------------------


@pytest.fixture(params=("native", "embedded"))
def clickhouse(request: pytest.FixtureRequest, make_config: Callable[..., WorkerConfig]):
    config = make_config(clickhouse_backend=request.param).clickhouse
    ch = connect(config)
    migrate(ch)
    yield config, ch
    ch.close()


def write_rows(ch, *, candidate_right: int, served_right: int, both: int, unrated: int) -> None:
    """Rated reviews (all rated 5) that only one of the two models, or both, labels right;
    plus unrated ones."""
    created = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    kinds = (
        [("negative", "positive", 5)] * candidate_right
        + [("positive", "negative", 5)] * served_right
        + [("positive", "positive", 5)] * both
        + [("neutral", "neutral", 0)] * unrated
    )
    ShadowStore(ch).write_shadow(
        [
            {
                "review_id": f"r-{i}",
                "candidate_version": "v2",
                "served_version": "v1",
                "category": "手机",
                "rating": rating,
                "served_sentiment": served,
                "candidate_sentiment": candidate,
                "served_confidence": 0.9,
                "candidate_confidence": 0.8,
                "candidate_prob_negative": 0.1,
                "candidate_prob_neutral": 0.1,
                "candidate_prob_positive": 0.8,
                "served_seconds": 0.001,
                "candidate_seconds": 0.003,
                "created_at": created,
                "scored_at": created,
            }
            for i, (served, candidate, rating) in enumerate(kinds)
        ]
    )


def promote(registry: Path, config: ClickHouseConfig, *extra: str) -> int:
    return shadow(registry, "promote", *extra, *clickhouse_flags(config))


@pytest.mark.clickhouse
def test_status_compares_the_two_models_on_the_same_reviews(
    registry: Path, clickhouse, capsys: pytest.CaptureFixture
) -> None:
    config, ch = clickhouse
    publish_copy(registry, "v2")
    start_shadow(registry, NAME, "v2", 0.5)
    write_rows(ch, candidate_right=30, served_right=10, both=60, unrated=20)
    capsys.readouterr()
    assert shadow(registry, "status", "--json", *clickhouse_flags(config)) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["reviews"], status["rated"]) == (120, 100)
    assert status["candidate"]["rating_agreement"] == pytest.approx(0.9)
    assert status["served"]["rating_agreement"] == pytest.approx(0.7)
    assert status["agreement"] == pytest.approx(80 / 120)
    assert status["gain"] == pytest.approx(0.2)
    assert status["candidate"]["ms_per_review"] == pytest.approx(3.0, rel=1e-3)
    assert status["served_versions"] == {"v1": 120}
    assert shadow(registry, "status", *clickhouse_flags(config)) == 0
    table = capsys.readouterr().out
    assert "rating agreement    70.00%" in table and "gain +20.00 points" in table


@pytest.mark.clickhouse
def test_promote_moves_current_when_the_candidate_holds_up(
    registry: Path, clickhouse, capsys: pytest.CaptureFixture
) -> None:
    config, ch = clickhouse
    publish_copy(registry, "v2")
    start_shadow(registry, NAME, "v2", 0.5)
    write_rows(ch, candidate_right=30, served_right=10, both=60, unrated=20)
    capsys.readouterr()
    assert promote(registry, config, "--min-rated", "100") == 0
    decision = json.loads(capsys.readouterr().out.splitlines()[0])
    assert decision["promote"] is True and decision["reasons"] == []
    assert decision["candidate"]["rating_agreement"] == pytest.approx(0.9)
    assert current_version(registry, NAME) == "v2"
    assert read_shadow(registry, NAME) is None  # the shadow ended with the promotion


@pytest.mark.clickhouse
@pytest.mark.parametrize(
    ("rows", "flags", "reason"),
    [
        ({"candidate_right": 10, "served_right": 30}, [], "drop 0.2000 > 0.005"),
        ({"candidate_right": 30, "served_right": 10}, ["--min-rated", "101"], "only 100 rated"),
        ({"candidate_right": 10, "served_right": 11}, [], "drop 0.0100 > 0.005"),
        ({"candidate_right": 10, "served_right": 11}, ["--max-agreement-drop", "0.02"], None),
    ],
    ids=["worse", "too-few", "slightly-worse", "within-margin"],
)
def test_promote_refuses_unless_the_comparison_holds_up(
    registry: Path, clickhouse, capsys: pytest.CaptureFixture, rows, flags, reason
) -> None:
    config, ch = clickhouse
    publish_copy(registry, "v2")
    start_shadow(registry, NAME, "v2", 0.5)
    rated = 100 - rows["candidate_right"] - rows["served_right"]
    write_rows(ch, **rows, both=rated, unrated=5)
    capsys.readouterr()
    code = promote(registry, config, "--min-rated", "100", *flags)
    decision = json.loads(capsys.readouterr().out.splitlines()[0])
    if reason is None:
        assert code == 0 and decision["promote"] is True
        assert current_version(registry, NAME) == "v2"
        return
    assert code == EXIT_NOT_PROMOTED and decision["promote"] is False
    assert any(reason in r for r in decision["reasons"]), decision["reasons"]
    assert current_version(registry, NAME) == "v1"
    assert read_shadow(registry, NAME).version == "v2"  # the shadow goes on


@pytest.mark.clickhouse
def test_a_candidate_that_no_longer_loads_is_not_promoted(registry: Path, clickhouse) -> None:
    config, ch = clickhouse
    publish_copy(registry, "v2")
    start_shadow(registry, NAME, "v2", 0.5)
    write_rows(ch, candidate_right=30, served_right=0, both=70, unrated=0)
    (registry / NAME / "v2" / "model.int8.onnx").write_bytes(b"not a model")
    with pytest.raises(SystemExit, match="not promoted: model version 'v2' refused"):
        promote(registry, config, "--min-rated", "100")
    assert current_version(registry, NAME) == "v1"
