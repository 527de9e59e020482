"""The network architectures of the sequence trainers, built only from an allowlisted description.

An architecture is plain JSON: ``{"kind": "lstm" | "transformer", <its integer and float sizes>}``.
:func:`build_net` checks the kind against :data:`ARCHITECTURES` and every field's name and type
before constructing anything, so a saved model names a known class and its sizes, never code.
Both nets read ``batch × length × inputs`` (the features plus a 1/0 "real bar" channel; padded
positions are zeros) and predict from the last position, which is always the row's own bar.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: kind -> {field: type}; the only architectures a saved sequence model may name.
ARCHITECTURES: dict[str, dict[str, type]] = {
    "lstm": {"inputs": int, "outputs": int, "length": int, "hidden_size": int, "num_layers": int, "dropout": float},
    "transformer": {
        "inputs": int, "outputs": int, "length": int, "d_model": int, "nhead": int, "num_layers": int,
        "dim_feedforward": int, "dropout": float,
    },
}
_LIMITS = {"inputs": 100_000, "outputs": 1_000, "length": 10_000, "hidden_size": 4_096, "num_layers": 16,
           "d_model": 4_096, "nhead": 64, "dim_feedforward": 16_384}


class LSTMNet(nn.Module):
    def __init__(self, inputs: int, outputs: int, length: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(inputs, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # left padding: zeros (mask channel 0) before the first real bar
        return self.head(out[:, -1])


class TransformerNet(nn.Module):
    """A small Transformer encoder: linear embedding, a learned position per slot, padded slots
    masked out of attention."""

    def __init__(self, inputs: int, outputs: int, length: int, d_model: int, nhead: int, num_layers: int,
                 dim_feedforward: int, dropout: float):
        super().__init__()
        self.embed = nn.Linear(inputs, d_model)
        self.position = nn.Parameter(torch.zeros(1, length, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, outputs)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position, src_key_padding_mask=pad)
        return self.head(h[:, -1])


_CLASSES: dict[str, type[nn.Module]] = {"lstm": LSTMNet, "transformer": TransformerNet}


def check_architecture(arch: Any) -> dict[str, Any]:
    """The architecture if it is an allowlisted kind with exactly its fields, each of its type
    and within bounds; ``ValueError`` otherwise."""
    if not isinstance(arch, dict) or arch.get("kind") not in ARCHITECTURES:
        kind = arch.get("kind") if isinstance(arch, dict) else arch
        raise ValueError(f"architecture {kind!r} is not allowlisted ({sorted(ARCHITECTURES)})")
    schema = ARCHITECTURES[arch["kind"]]
    fields = {k: v for k, v in arch.items() if k != "kind"}
    if set(fields) != set(schema):
        raise ValueError(f"architecture {arch['kind']!r} needs exactly the fields {sorted(schema)}, got {sorted(fields)}")
    for key, kind in schema.items():
        value = fields[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise ValueError(f"architecture field {key!r} must be {kind.__name__}, got {value!r}")
        if kind is int and not 1 <= value <= _LIMITS[key]:
            raise ValueError(f"architecture field {key!r} out of range: {value}")
        if kind is float and not 0.0 <= value < 1.0:
            raise ValueError(f"architecture field {key!r} must be in [0, 1), got {value}")
    if arch["kind"] == "transformer" and fields["d_model"] % fields["nhead"]:
        raise ValueError("architecture: d_model must be a multiple of nhead")
    return dict(arch)


def build_net(arch: dict[str, Any]) -> nn.Module:
    arch = check_architecture(arch)
    return _CLASSES[arch["kind"]](**{k: v for k, v in arch.items() if k != "kind"})
