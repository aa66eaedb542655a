"""Loading a registry version for serving: a clear refusal for whatever cannot serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import ModelConfig
from stream.serving.loader import ModelRefused, load_checked
from tests.stream.serving.registry import NAME, publish_broken, publish_copy


def config(registry: Path, **overrides) -> ModelConfig:
    return ModelConfig(model_registry=registry, model_name=NAME, **overrides)


def test_current_and_a_named_version_load_and_pass_the_canary(registry: Path) -> None:
    publish_copy(registry, "v2")
    assert load_checked(config(registry), "current", tolerance=0.25).version == "v1"
    model = load_checked(config(registry), "v2", tolerance=0.25, threads=1)
    assert (model.version, model.runtime, model.directory.name) == ("v2", "onnx-int8", "v2")


@pytest.mark.parametrize(
    ("prepare", "version", "reason"),
    [
        (None, "v9", "has no version 'v9'"),
        (None, "../v1", "invalid model version"),
        (lambda r: publish_broken(r, "v2", how="truncated"), "v2", "cannot load .*model.int8"),
        (lambda r: publish_broken(r, "v2", how="missing"), "v2", "cannot load"),
        (lambda r: publish_copy(r, "v2", card_version="v7"), "v2", "card says version 'v7'"),
    ],
    ids=["missing", "bad-name", "truncated", "no-weights", "wrong-card"],
)
def test_what_cannot_serve_is_refused_with_the_reason(
    registry: Path, prepare, version: str, reason: str
) -> None:
    if prepare:
        prepare(registry)
    with pytest.raises(ModelRefused, match=reason) as refused:
        load_checked(config(registry), version, tolerance=0.25)
    assert refused.value.version == version


def test_torch_runtime_when_asked(registry: Path) -> None:
    model = load_checked(config(registry, model_runtime="torch"), "v1", tolerance=0.25)
    assert model.runtime == "torch"
