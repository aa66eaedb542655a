import json
import zipfile
from pathlib import Path

import pytest

from model.corpus import SHIPPED_CORPUS, read_records


def test_the_shipped_corpus_reads_as_cat_label_review_rows() -> None:
    first = next(read_records(SHIPPED_CORPUS))
    assert set(first) == {"cat", "label", "review"}
    assert first["label"] in ("0", "1")


def test_a_zip_of_csv_and_jsonl_reads_member_by_member_in_name_order(tmp_path: Path) -> None:
    archive = tmp_path / "reviews.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("b.jsonl", json.dumps({"text": "差", "rating": 1}) + "\n\n")
        handle.writestr("a.csv", '\ufefftext,label\r\n"好\r\n看",1\r\n')
        handle.writestr("notes.txt", "not reviews")
    assert list(read_records(archive)) == [
        {"text": "好\r\n看", "label": "1"},
        {"text": "差", "rating": 1},
    ]


def test_unknown_file_types_and_broken_json_lines_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "reviews.txt"
    other.write_text("text\n好\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported file type"):
        list(read_records(other))
    broken = tmp_path / "reviews.jsonl"
    broken.write_text('{"text": "好"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        list(read_records(broken))
