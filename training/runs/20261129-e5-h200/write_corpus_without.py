"""The corpus without one category, written as bench.adaptation's cut_domain writes it."""

import csv
import sys

from model.corpus import SHIPPED_CORPUS
from training.data import load_file

out, category = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "酒店"
reviews, _ = load_file(SHIPPED_CORPUS)
with open(out, "w", encoding="utf-8", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["cat", "label", "review"])
    writer.writerows(
        [r.category, int(r.label == "positive"), r.text] for r in reviews if r.category != category
    )
