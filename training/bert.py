"""BERT sequence classification: one training loop for every start.

* from scratch: :func:`scratch_model` builds a small ``BertForSequenceClassification`` over the
  corpus character vocabulary (optionally warmed up by :func:`mlm_pretrain`);
* from a checkpoint: :func:`checkpoint_model` loads any local Hugging Face directory (a user's
  ``bert-base-chinese``, or the multilingual-e5 encoder made by :mod:`training.e5`).

Both go through :func:`train_classifier`, which also distils from a teacher's logits when
``soft_logits`` are given. Batches are bucketed by length (dynamic padding) and seeded.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm


@dataclass(frozen=True)
class BertSpec:
    """Shape of a from-scratch BERT. The default is sized for >= 2,000 reviews/s on 2 cores."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    dropout: float = 0.1
    max_position_embeddings: int = 512


@dataclass(frozen=True)
class TrainOptions:
    epochs: float = 3.0
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 128
    seed: int = 13
    soft_weight: float = 0.0  # share of the loss from the teacher's soft labels
    soft_temperature: float = 2.0
    label_smoothing: float = 0.0
    time_budget_s: float | None = None  # stop early (after a whole step) once spent
    device: str = "auto"
    bf16: bool = True  # autocast on CUDA
    eval_every_epoch: bool = True
    text_prefix: str = ""  # prepended to every text (e5 expects "query: ")


@dataclass
class History:
    epochs: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def scratch_model(
    spec: BertSpec, *, vocab_size: int, labels: Sequence[str], pad_token_id: int = 0
) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        hidden_dropout_prob=spec.dropout,
        attention_probs_dropout_prob=spec.dropout,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=pad_token_id,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return BertForSequenceClassification(config)


def checkpoint_model(directory: Path, *, labels: Sequence[str]) -> torch.nn.Module:
    """Any local HF checkpoint with a fresh classification head for ``labels``."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(directory),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


# --- batching ---------------------------------------------------------------------------------


def length_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random | None
) -> list[list[int]]:
    """Index batches of similar length. With ``rng`` the order is shuffled (training);
    without it, batches follow length order (inference)."""
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = batch_size * 50
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids, mask


class PaddedIds:
    """All sequences padded once into one matrix, so a batch is a slice (fast collation)."""

    def __init__(self, ids: Sequence[Sequence[int]], pad_id: int) -> None:
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)
        width = int(self.lengths.max()) if len(ids) else 1
        self.matrix = np.full((len(ids), width), pad_id, dtype=np.int32)
        for row, seq in enumerate(ids):
            self.matrix[row, : len(seq)] = seq

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = self.lengths[rows]
        width = int(lengths.max())
        input_ids = torch.from_numpy(self.matrix[rows, :width].astype(np.int64))
        mask = torch.from_numpy((np.arange(width)[None, :] < lengths[:, None]).astype(np.int64))
        return input_ids, mask


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    ids: Sequence[Sequence[int]],
    *,
    pad_id: int,
    batch_size: int = 128,
    device: torch.device | None = None,
    progress: bool = False,
    desc: str = "predict",
) -> np.ndarray:
    """Logits for every sequence, in input order."""
    device = device or next(model.parameters()).device
    model.eval()
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    batches = length_batches([len(x) for x in ids], batch_size, None)
    autocast = device.type == "cuda"
    padded = PaddedIds(ids, pad_id)
    for batch in tqdm(batches, desc=desc, disable=not progress, leave=False):
        input_ids, mask = padded.batch(batch)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        out[batch] = logits.float().cpu().numpy()
    return out


# --- training ---------------------------------------------------------------------------------


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class _Clock:
    """Training progress in [0, 1]: by steps, or by time when a budget ends training first,
    so the learning rate still anneals fully under a time budget."""

    def __init__(self, total_steps: int, budget_s: float | None) -> None:
        self.total_steps = total_steps
        self.budget_s = budget_s
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def progress(self, step: int) -> float:
        by_steps = step / max(1, self.total_steps)
        if self.budget_s:
            return min(1.0, max(by_steps, self.elapsed() / self.budget_s))
        return min(1.0, by_steps)

    def lr_factor(self, step: int, warmup_ratio: float) -> float:
        progress = self.progress(step)
        warmup = warmup_ratio
        if progress < warmup:
            return max(progress / warmup, 1.0 / max(1, self.total_steps))
        return 0.5 * (1 + math.cos(math.pi * (progress - warmup) / max(1e-9, 1 - warmup)))


def train_classifier(
    model: torch.nn.Module,
    train_ids: Sequence[Sequence[int]],
    train_labels: Sequence[int],
    *,
    pad_id: int,
    options: TrainOptions,
    val_ids: Sequence[Sequence[int]] | None = None,
    val_labels: Sequence[int] | None = None,
    soft_logits: np.ndarray | None = None,
    progress: bool = True,
    on_epoch: Callable[[int, History], None] | None = None,
) -> History:
    """Train in place; returns the learning curves. ``soft_logits`` (teacher logits, one row
    per training example, same label order) turn on distillation with ``soft_weight``."""
    seed_everything(options.seed)
    device = pick_device(options.device)
    model.to(device)
    rng = random.Random(options.seed)
    lengths = [len(x) for x in train_ids]
    padded = PaddedIds(train_ids, pad_id)
    labels = torch.tensor(list(train_labels), dtype=torch.long)
    soft = torch.tensor(soft_logits, dtype=torch.float32) if soft_logits is not None else None
    steps_per_epoch = math.ceil(len(train_ids) / options.batch_size)
    total_steps = max(1, int(steps_per_epoch * options.epochs))
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": options.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=options.learning_rate)
    clock = _Clock(total_steps, options.time_budget_s)
    autocast = device.type == "cuda" and options.bf16
    history = History()
    step = 0
    epoch = 0
    bar = tqdm(total=total_steps, desc="train", disable=not progress, unit="step")
    while step < total_steps:
        model.train()
        losses: list[torch.Tensor] = []  # kept on the device: no sync every step
        for batch in length_batches(lengths, options.batch_size, rng):
            if step >= total_steps:
                break
            input_ids, mask = padded.batch(batch)
            input_ids, mask = input_ids.to(device), mask.to(device)
            target = labels[batch].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            loss = F.cross_entropy(logits, target, label_smoothing=options.label_smoothing)
            if soft is not None and options.soft_weight > 0:
                t = options.soft_temperature
                teacher = F.softmax(soft[batch].to(device) / t, dim=-1)
                distil = F.kl_div(
                    F.log_softmax(logits / t, dim=-1), teacher, reduction="batchmean"
                ) * (t * t)
                loss = options.soft_weight * distil + (1 - options.soft_weight) * loss
            for group in optimizer.param_groups:
                group["lr"] = options.learning_rate * clock.lr_factor(step, options.warmup_ratio)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.detach())
            step += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{torch.stack(losses[-50:]).mean().item():.4f}")
            if options.time_budget_s and clock.elapsed() > options.time_budget_s:
                total_steps = step
                break
        epoch += 1
        history.epochs.append(round(step / steps_per_epoch, 3))
        history.train_loss.append(
            float(torch.stack(losses).mean().item()) if losses else float("nan")
        )
        if val_ids is not None and val_labels is not None and options.eval_every_epoch:
            logits = predict_logits(model, val_ids, pad_id=pad_id, device=device)
            target = torch.tensor(list(val_labels), dtype=torch.long)
            history.val_loss.append(float(F.cross_entropy(torch.from_numpy(logits), target)))
            history.val_accuracy.append(float((logits.argmax(1) == target.numpy()).mean()))
            bar.write(
                f"epoch {epoch}: train loss {history.train_loss[-1]:.4f} "
                f"val loss {history.val_loss[-1]:.4f} val acc {history.val_accuracy[-1]:.4f}"
            )
        if on_epoch is not None:
            on_epoch(epoch, history)
    bar.close()
    history.seconds = clock.elapsed()
    history.steps = step
    model.eval()
    return history


def mlm_pretrain(
    model: torch.nn.Module,
    ids: Sequence[Sequence[int]],
    *,
    pad_id: int,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int],
    options: TrainOptions,
    progress: bool = True,
) -> list[float]:
    """Masked-language-model warm-up of ``model.bert`` (a sequence classifier's encoder) on
    unlabelled text; 15% of tokens, of which 80% [MASK], 10% random, 10% kept."""
    from transformers import BertForMaskedLM

    seed_everything(options.seed)
    device = pick_device(options.device)
    mlm = BertForMaskedLM(model.config)
    mlm.bert.load_state_dict(model.bert.state_dict(), strict=False)
    mlm.to(device).train()
    special = torch.tensor(sorted(special_ids))
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=options.learning_rate, weight_decay=0.01)
    rng = random.Random(options.seed)
    lengths = [len(x) for x in ids]
    steps_per_epoch = math.ceil(len(ids) / options.batch_size)
    total = max(1, int(steps_per_epoch * options.epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, total, int(total * options.warmup_ratio))
    )
    generator = torch.Generator().manual_seed(options.seed)
    losses: list[float] = []
    step = 0
    started = time.perf_counter()
    autocast = device.type == "cuda" and options.bf16
    with tqdm(total=total, desc="mlm", disable=not progress, unit="step") as bar:
        while step < total:
            for batch in length_batches(lengths, options.batch_size, rng):
                if step >= total:
                    break
                input_ids, mask = collate([ids[i] for i in batch], pad_id)
                labels = input_ids.clone()
                maskable = mask.bool() & ~torch.isin(input_ids, special)
                chosen = (torch.rand(input_ids.shape, generator=generator) < 0.15) & maskable
                labels[~chosen] = -100
                roll = torch.rand(input_ids.shape, generator=generator)
                input_ids[chosen & (roll < 0.8)] = mask_id
                random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator)
                swap = chosen & (roll >= 0.8) & (roll < 0.9)
                input_ids[swap] = random_tokens[swap]
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    loss = mlm(
                        input_ids=input_ids.to(device),
                        attention_mask=mask.to(device),
                        labels=labels.to(device),
                    ).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
                if options.time_budget_s and time.perf_counter() - started > options.time_budget_s:
                    total = step
                    break
    model.bert.load_state_dict(mlm.bert.state_dict(), strict=False)
    return losses
