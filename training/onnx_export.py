"""Export a packaged model to ONNX with int8 weights, for :class:`model.runtime.OnnxForward`.

The network is traced from the saved directory (eager attention, so the graph is plain ONNX
ops); ONNX Runtime's transformer optimizer fuses it (attention, skip + layer norm, bias + GELU,
embeddings + layer norm: fewer, larger kernels, which is what a small model on a CPU is
short of); then ``onnxruntime.quantization.quantize_dynamic`` stores every MatMul weight as
int8, with activations quantised on the fly. Embeddings stay float32.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path
from typing import Any

from model.card import OnnxCard
from model.runtime import ONNX_FILE

OPSET = 17


def _traceable(model: Any) -> Any:
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly().eval()


def export_onnx(directory: Path) -> OnnxCard:
    """Write ``directory/model.int8.onnx`` from the model saved in ``directory``; returns the
    card entry (file, size, sha256, opset, fused operators, quantisation)."""
    import torch
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    directory = Path(directory)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory), attn_implementation="eager"
    ).eval()
    example = torch.ones((2, 8), dtype=torch.long)
    target = directory / ONNX_FILE
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                _traceable(model),
                (example, example),
                str(float_path),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "logits": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        fused = _fuse(float_path, model.config)
        quantize_dynamic(
            str(float_path),
            str(target),
            weight_type=QuantType.QInt8,
            # Fused ops are outside shape inference; their outputs are float32.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    data = target.read_bytes()
    return OnnxCard(
        file=ONNX_FILE,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        opset=OPSET,
        fused_operators=fused,
        quantization="dynamic int8 (onnxruntime quantize_dynamic, QInt8 MatMul weights)",
    )


def _fuse(path: Path, config: Any) -> dict[str, int]:
    """Fuse a BERT graph in place with ONNX Runtime's transformer optimizer; returns the count
    of each fused operator (empty for other architectures, which are left as exported)."""
    from onnxruntime.transformers.optimizer import optimize_model

    if config.model_type != "bert":
        return {}
    optimized = optimize_model(
        str(path),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    optimized.save_model_to_file(str(path))
    return {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
