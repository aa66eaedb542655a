"""The per-review work around the model, before and after issue 12's cuts, side by side in one
run on the shipped corpus: each stage through the reference path (what the worker did) and
the current one, with the ratio, and a check that both give the same output.

    .venv/bin/python -m bench.overhead --events 4096 --rounds 3

Stages: validation (``parse_review`` with ``jsonschema`` alone vs the compiled schema check),
segmentation (``jieba.Tokenizer.lcut`` vs ``stream.segmenter``, jieba-rs: it may break an
exact route tie the other way, so items may differ within ``TIE_TOLERANCE``) and event
encoding (``json.dumps(asdict())`` vs ``to_json_bytes``). Prints a table and writes JSON
(``--json``); exits 1 when a stage's outputs differ beyond its tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.corpus import SHIPPED_CORPUS
from model.text import clean_text
from stream.events import to_json_bytes
from stream.keywords import Keywords
from stream.replay import EventFactory, cycle_sources, read_corpus
from stream.rows import ClassifiedReview, build_sentiment_event
from stream.segmenter import TIE_TOLERANCE, Segmenter
from stream.validation import ValidReview, parse_review


@dataclass(frozen=True)
class _Prediction:
    """A model output with awkward floats (rounding, an exponent on the wire)."""

    label: str = "negative"
    confidence: float = 0.912345678
    probabilities: dict[str, float] = field(
        default_factory=lambda: {"negative": 0.912345678, "neutral": 4e-7, "positive": 0.087654}
    )


def best_of(rounds: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``rounds`` runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def stage(
    name: str,
    count: int,
    rounds: int,
    before: Callable[[], Any],
    after: Callable[[], Any],
    tolerance: float = 0.0,
) -> dict[str, Any]:
    """Both paths timed; ``differing``: items whose outputs differ (``tolerance``: the
    share allowed)."""
    old_s, old = best_of(rounds, before)
    new_s, new = best_of(rounds, after)
    differing = sum(a != b for a, b in zip(old, new, strict=True))
    return {
        "stage": name,
        "items": count,
        "before_us": 1e6 * old_s / count,
        "after_us": 1e6 * new_s / count,
        "speedup": old_s / new_s,
        "differing": differing,
        "within_tolerance": differing <= tolerance * count,
    }


def segment_all(segmenter: Segmenter, texts: Sequence[str]) -> list[list[str]]:
    return [segmenter.cut(text) for text in texts]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)

    now = datetime.now(UTC)
    factory = EventFactory(seed=12, id_prefix="overhead", max_text_chars=5000)
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 12)
    raw = [factory.make(next(sources), now).value for _ in range(args.events)]
    options = {"max_text_chars": 5000, "max_event_bytes": 262144, "now": now}
    options["max_future_skew_s"] = 300.0

    rows = [
        stage(
            "validate (decode, schema, clean)",
            len(raw),
            args.rounds,
            lambda: [parse_review(value, compiled=False, **options) for value in raw],
            lambda: [parse_review(value, **options) for value in raw],
        )
    ]
    valid = [r for r in (parse_review(v, **options) for v in raw) if isinstance(r, ValidReview)]

    keywords = Keywords.load()
    reference = keywords.reference_tokenizer
    texts = list(dict.fromkeys(clean_text(s.text) for s in read_corpus(SHIPPED_CORPUS)))
    texts = [text for text in texts if text][: args.events]
    rows.append(
        stage(
            "segment (jieba, HMM on)",
            len(texts),
            args.rounds,
            lambda: [reference.lcut(text, HMM=True) for text in texts],
            lambda: segment_all(keywords.segmenter, texts),
            tolerance=TIE_TOLERANCE,
        )
    )

    classified = [
        ClassifiedReview.of(
            review,
            keywords.extract(review.clean_text),
            _Prediction(),
            model_version="bench",
            processed_at=now,
        )
        for review in valid
    ]

    def reference_encoding() -> list[bytes]:
        return [
            json.dumps(
                asdict(build_sentiment_event(c)), ensure_ascii=False, separators=(",", ":")
            ).encode()
            for c in classified
        ]

    rows.append(
        stage(
            "build + encode review.sentiment",
            len(classified),
            args.rounds,
            reference_encoding,
            lambda: [to_json_bytes(build_sentiment_event(c)) for c in classified],
        )
    )

    print(f"{'stage':<34} {'items':>6} {'before µs':>10} {'after µs':>10} {'ratio':>6}  differ")
    for row in rows:
        print(
            f"{row['stage']:<34} {row['items']:>6} {row['before_us']:>10.1f} "
            f"{row['after_us']:>10.1f} {row['speedup']:>5.2f}x  {row['differing']}"
            + ("" if row["within_tolerance"] else " (beyond tolerance)")
        )
    before = sum(row["before_us"] for row in rows)
    after = sum(row["after_us"] for row in rows)
    print(
        f"{'per review, these stages':<34} {'':>6} {before:>10.1f} {after:>10.1f} "
        f"{before / after:>5.2f}x"
    )
    print(f"per 256-review batch: {before * 256 / 1000:.1f} ms -> {after * 256 / 1000:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps({"stages": rows, "before_us": before, "after_us": after}))
    return 0 if all(row["within_tolerance"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
