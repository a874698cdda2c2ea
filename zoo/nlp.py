"""A tiny text classifier, so tests can check that calibench refuses NLP models.

calibench calibrates image CNNs; transformer-style models (int64 token ids, embedding Gather,
attention MatMuls, LayerNorm) need a different calibration recipe, and the tool should say so
instead of producing a silently bad model. This network has every one of those tell-tale
features while staying a few kilobytes. Attention is written out by hand (no
``nn.MultiheadAttention``) so the exported graph is plain MatMul/Softmax with no fused kernels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoo._onnx import assert_matches_torch, export_onnx

VOCAB_SIZE = 1000
HIDDEN = 32
NUM_LABELS = 2


class TinyTransformer(nn.Module):
    """Embedding + one masked single-head self-attention layer + linear head on token 0."""

    def __init__(
        self, vocab_size: int = VOCAB_SIZE, hidden: int = HIDDEN, labels: int = NUM_LABELS
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, labels)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids)  # [batch, seq, hidden]
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = torch.matmul(q, k.transpose(1, 2)) * self.scale  # [batch, seq, seq]
        # Padding keys (mask 0) get a large negative bias so softmax ignores them.
        bias = (1.0 - attention_mask[:, None, :].to(scores.dtype)) * -1e4
        attn = torch.softmax(scores + bias, dim=-1)
        h = self.norm(h + self.out(torch.matmul(attn, v)))
        return self.head(h[:, 0])


def build_tiny_transformer(out_path: Path) -> Path:
    """Export a seeded, untrained TinyTransformer (inputs "input_ids", "attention_mask" int64
    [batch, seq]; output "logits" [batch, 2]); batch and seq are dynamic. Cached if present.
    """
    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    torch.manual_seed(0)
    model = TinyTransformer().eval()
    ids = torch.randint(0, VOCAB_SIZE, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.int64)
    export_onnx(
        model,
        (ids, mask),
        out_path,
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "logits": {0: "batch"},
        },
    )
    rng = np.random.default_rng(0)
    feeds = {
        "input_ids": rng.integers(0, VOCAB_SIZE, (3, 11), dtype=np.int64),
        "attention_mask": (np.arange(11)[None, :] < np.array([[11], [6], [1]])).astype(np.int64),
    }
    try:
        assert_matches_torch(model, out_path, feeds, atol=1e-4)
    except AssertionError:
        out_path.unlink()
        raise
    return out_path
