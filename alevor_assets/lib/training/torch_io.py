"""Sequence models on disk: one ``safetensors`` file holding the weights, with the architecture
and the preprocessing as JSON in its header metadata (one file, so the registry's sha256 covers
all of it). safetensors is a JSON header and raw tensor bytes: nothing executes on load. Loading
checks the format tag, builds the network from the allowlisted architecture (``torch_nets``) and
accepts only float32 tensors whose names and shapes are exactly that network's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = "alevor.torch/1"


def save_net(path: Path, net: Any, trainer: str, architecture: dict[str, Any], preprocessing: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    header = json.dumps({"trainer": trainer, "architecture": architecture, "preprocessing": preprocessing},
                        sort_keys=True)
    save_file(state, str(path), metadata={"format": FORMAT, "alevor": header})
    return Path(path)


def load_net(path: Path, trainer: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``(net in eval mode, architecture, preprocessing)`` of a file :func:`save_net` wrote for
    ``trainer``; ``ValueError`` for anything else."""
    import torch
    from safetensors import SafetensorError, safe_open

    from alevor_assets.lib.training.torch_nets import build_net

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: not an Alevor sequence model (format {meta.get('format')!r})")
            try:
                header = json.loads(meta["alevor"])
            except (KeyError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: unreadable model header: {exc}") from None
            if not isinstance(header, dict) or header.get("trainer") != trainer:
                raise ValueError(f"{path} is not a {trainer} artifact")
            net = build_net(header.get("architecture"))
            expected = net.state_dict()
            names = set(fh.keys())
            if names != set(expected):
                raise ValueError(f"{path}: tensors {sorted(names ^ set(expected))} do not match the architecture")
            state = {}
            for name in sorted(names):
                tensor = fh.get_tensor(name)
                if tensor.dtype != torch.float32 or tensor.shape != expected[name].shape:
                    raise ValueError(f"{path}: tensor {name!r} is {tensor.dtype} {tuple(tensor.shape)}, "
                                     f"expected float32 {tuple(expected[name].shape)}")
                state[name] = tensor
    except SafetensorError as exc:
        raise ValueError(f"{path}: not a safetensors file: {exc}") from None
    net.load_state_dict(state, strict=True)
    net.eval()
    return net, header["architecture"], dict(header.get("preprocessing") or {})
