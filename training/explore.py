"""Exploration report: label distribution per category, review lengths, top words per label."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from model.jsonio import write_json
from training import plots
from training.data import Review

STOPWORDS_FILE = (
    Path(__file__).resolve().parent.parent / "stream" / "resources" / "stopwords_zh.txt"
)


def _stopwords() -> frozenset[str]:
    if STOPWORDS_FILE.is_file():
        lines = STOPWORDS_FILE.read_text(encoding="utf-8").splitlines()
        return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))
    return frozenset()


def characteristic_words(
    reviews: Sequence[Review], *, top: int = 20, min_count: int = 20
) -> dict[str, list[tuple[str, float]]]:
    """Words most typical of each label by smoothed log-odds against the other labels."""
    import jieba

    stop = _stopwords()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for review in reviews:
        words = {w for w in jieba.lcut(review.text) if len(w) > 1 and w not in stop}
        counts[review.label].update(words)
    totals = {label: sum(c.values()) for label, c in counts.items()}
    result: dict[str, list[tuple[str, float]]] = {}
    for label, own in counts.items():
        rest = Counter()
        for other, c in counts.items():
            if other != label:
                rest.update(c)
        rest_total = sum(rest.values()) or 1
        scored = [
            (
                word,
                math.log((n + 1) / (totals[label] + 1)) - math.log((rest[word] + 1) / rest_total),
            )
            for word, n in own.items()
            if n >= min_count
        ]
        result[label] = [
            (w, round(s, 3)) for w, s in sorted(scored, key=lambda x: (-x[1], x[0]))[:top]
        ]
    return result


def explore(reviews: Sequence[Review], out_dir: Path, *, data_summary: dict | None = None) -> dict:
    """Write the exploration PNGs, ``exploration.json`` and ``exploration.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_category: dict[str, Counter[str]] = defaultdict(Counter)
    lengths: dict[str, list[int]] = defaultdict(list)
    for review in reviews:
        per_category[review.category][review.label] += 1
        lengths[review.label].append(len(review.text))
    words = characteristic_words(reviews)
    plots.label_distribution(per_category, out_dir / "label_distribution.png")
    plots.length_distribution(lengths, out_dir / "length_distribution.png")
    plots.top_words(words, out_dir / "top_words.png")
    all_lengths = sorted(n for values in lengths.values() for n in values)

    def pct(q: float) -> int:
        return all_lengths[min(len(all_lengths) - 1, int(q * len(all_lengths)))]

    summary = {
        "reviews": len(reviews),
        "labels": dict(Counter(r.label for r in reviews)),
        "per_category": {c: dict(v) for c, v in sorted(per_category.items())},
        "length_chars": {"p10": pct(0.1), "median": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
        "median_length_by_label": {
            label: sorted(v)[len(v) // 2] for label, v in sorted(lengths.items())
        },
        "top_words": words,
        "data": data_summary,
    }
    write_json(out_dir / "exploration.json", summary)
    lines = [
        "# Exploration",
        "",
        f"{len(reviews):,} reviews after cleaning and deduplication; labels "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(summary["labels"].items()))
        + ".",
        "",
        "Per category (negative / positive):",
        "",
        "| category | " + " | ".join(sorted(summary["labels"])) + " |",
        "|---|" + "---|" * len(summary["labels"]),
    ]
    for category, counts in summary["per_category"].items():
        lines.append(
            f"| {category} | "
            + " | ".join(str(counts.get(k, 0)) for k in sorted(summary["labels"]))
            + " |"
        )
    lengths_line = ", ".join(f"{k} {v}" for k, v in summary["length_chars"].items())
    lines += [
        "",
        f"Length in characters: {lengths_line}.",
        "",
        "![labels](label_distribution.png)",
        "![lengths](length_distribution.png)",
        "![words](top_words.png)",
        "",
    ]
    for label, items in words.items():
        lines.append(f"- **{label}**: " + "、".join(w for w, _ in items[:12]))
    (out_dir / "exploration.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary
