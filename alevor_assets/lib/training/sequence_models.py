"""Sequence models with PyTorch on CPU: an LSTM and a small Transformer encoder over the last
``sequence_length`` bars of each token (``lstm_classifier``, ``lstm_regressor``,
``transformer_classifier``, ``transformer_regressor``).

They receive each fold's rows with their ``token`` and ``ts`` (``needs_keys``) and build every
row's window from that fold's rows only (``sequences``): nothing crosses a fold boundary, a purged
horizon, a token or a gap in the bars. Features are standardized with the training fold's mean and
standard deviation (missing values become 0, the mean) and a 1/0 channel marks real bars. Training
is Adam on mini-batches, one validation pass per epoch, keeping the best epoch's weights and
stopping after ``patience`` epochs without improvement. Runs are reproducible: ``torch.manual_seed``,
deterministic kernels, a seeded shuffle, and at most ``num_threads`` threads (0: every core this
process may use; never more). Saved as safetensors with the architecture and preprocessing in its
header (``torch_io``); never pickle.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import polars as pl

from alevor_assets.lib.cores import usable_cores
from alevor_assets.lib.training.base import SEQUENCE_KEYS, Trainer, register_trainer, encode_classes, recorded_fit_info
from alevor_assets.lib.training.sequences import bar_step_us, sequence_windows
from alevor_assets.lib.training.sklearn_base import _balanced, _positive_float, _positive_int


@contextmanager
def _torch_session(seed: int, threads: int) -> Iterator[Any]:
    """Seeded, deterministic, thread-bounded torch; the process-wide settings are restored after."""
    import torch

    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(max(1, min(threads or usable_cores(), usable_cores())))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield torch
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


@dataclass
class _SequenceTrainer(Trainer):
    needs_keys: ClassVar[bool] = True
    artifact_file: ClassVar[str] = "model.safetensors"
    kind: ClassVar[str]

    sequence_length: int = 24
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    dropout: float = 0.1
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 5
    seed: int = 42
    num_threads: int = 0

    def __post_init__(self) -> None:
        _positive_int("sequence_length", self.sequence_length)
        _positive_float("learning_rate", self.learning_rate)
        _positive_float("weight_decay", self.weight_decay, allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"hyperparameter 'dropout' must be in [0, 1), got {self.dropout!r}")
        _positive_int("batch_size", self.batch_size)
        _positive_int("max_epochs", self.max_epochs)
        _positive_int("patience", self.patience)
        _positive_int("num_threads", self.num_threads, minimum=0)
        self._sizes()

    def _sizes(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------------------
    def _inputs(self, x: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The standardized feature matrix with a zero row appended (the padding row), and each
        row's window of indices into it."""
        missing = [c for c in (*SEQUENCE_KEYS, *self._features) if c not in x.columns]
        if missing:
            raise ValueError(f"{self.name}: column(s) {missing} missing (a sequence model needs token, ts and its features)")
        m = x.select([pl.col(c).cast(pl.Float64) for c in self._features]).to_numpy()
        z = (np.asarray(m, dtype=np.float64) - self._mean) / self._scale
        z = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
        z = np.vstack([z, np.zeros((1, z.shape[1]), dtype=np.float32)])
        tokens = x["token"].cast(pl.Utf8).to_numpy()
        ts = x["ts"].dt.epoch("us").to_numpy()
        windows = sequence_windows(tokens, ts, self.sequence_length, self._step_us)
        return z, windows

    @staticmethod
    def _batch(torch: Any, z: np.ndarray, windows: np.ndarray, idx: np.ndarray) -> tuple[Any, Any]:
        w = windows[idx]
        pad = w < 0
        x = z[np.where(pad, len(z) - 1, w)]  # padded slots read the zero row
        x = np.concatenate([x, (~pad)[..., None].astype(np.float32)], axis=2)
        return torch.from_numpy(x), torch.from_numpy(pad)

    def _forward(self, torch: Any, z: np.ndarray, windows: np.ndarray) -> np.ndarray:
        self._net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(windows), 4096):
                xb, pad = self._batch(torch, z, windows, np.arange(start, min(start + 4096, len(windows))))
                out.append(self._net(xb, pad).numpy())
        return np.concatenate(out) if out else np.zeros((0, self._outputs), dtype=np.float32)

    # -- training --------------------------------------------------------------------------------
    def fit(self, x_train: pl.DataFrame, y_train: np.ndarray, w_train: np.ndarray,
            x_val: pl.DataFrame, y_val: np.ndarray, w_val: np.ndarray) -> None:
        self._features = [c for c in x_train.columns if c not in SEQUENCE_KEYS]
        if not self._features:
            raise ValueError(f"{self.name}: no feature columns to fit on")
        self._info: dict[str, Any] = {}
        self._classes: list[int] | None = None
        m = np.asarray(x_train.select([pl.col(c).cast(pl.Float64) for c in self._features]).to_numpy(), dtype=np.float64)
        seen = np.isfinite(m)
        count = seen.sum(axis=0)
        mean = np.where(seen, m, 0.0).sum(axis=0) / np.maximum(count, 1)
        var = np.where(seen, (m - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count, 1)
        self._mean = np.where(count > 0, mean, 0.0)  # an all-missing column: 0, scale 1
        self._scale = np.where((count > 0) & (var > 0), np.sqrt(var), 1.0)
        both = pl.concat([x_train.select(SEQUENCE_KEYS), x_val.select(SEQUENCE_KEYS)])
        self._step_us = bar_step_us(both["token"].cast(pl.Utf8).to_numpy(), both["ts"].dt.epoch("us").to_numpy())
        wt = np.ones(len(y_train)) if w_train is None else np.asarray(w_train, dtype=np.float64)
        wv = np.ones(len(y_val)) if w_val is None else np.asarray(w_val, dtype=np.float64)
        if self.task == "classification":
            yt, yv = self._encode(y_train, y_val)
            if getattr(self, "balance_classes", False):
                k = len(self._classes or [])
                wt, wv = wt * _balanced(yt, k), wv * _balanced(yv, k)
            self._outputs = len(self._classes or [])
        else:
            yt64, yv64 = np.asarray(y_train, dtype=np.float64), np.asarray(y_val, dtype=np.float64)
            t_mean, t_scale = float(np.mean(yt64)), float(np.std(yt64))
            t_scale = t_scale if t_scale > 0 and np.isfinite(t_scale) else 1.0
            self._info.update(target_mean=t_mean, target_scale=t_scale)
            yt, yv = (yt64 - t_mean) / t_scale, (yv64 - t_mean) / t_scale
            self._outputs = 1
        with _torch_session(self.seed, self.num_threads) as torch:
            self._net = self._build()
            self._train(torch, self._inputs(x_train), yt, wt, self._inputs(x_val), yv, wv)

    def _encode(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map class labels (any ints, e.g. -1/0/1) to 0..k-1 in sorted order."""
        self._classes, yt, yv = encode_classes(self.name, y_train, y_val)
        return yt, yv

    def _architecture(self) -> dict[str, Any]:
        return {"kind": self.kind, "inputs": len(self._features) + 1, "outputs": self._outputs,
                "length": self.sequence_length, "dropout": float(self.dropout), **self._sizes()}

    def _build(self) -> Any:
        from alevor_assets.lib.training.torch_nets import build_net

        return build_net(self._architecture())

    def _loss(self, torch: Any, out: Any, y: Any, w: Any) -> Any:
        if self.task == "classification":
            per_row = torch.nn.functional.cross_entropy(out, y, reduction="none")
        else:
            per_row = (out[:, 0] - y) ** 2
        return (per_row * w).sum() / w.sum().clamp_min(1e-12)

    def _train(self, torch: Any, train: tuple[np.ndarray, np.ndarray], yt: np.ndarray, wt: np.ndarray,
               val: tuple[np.ndarray, np.ndarray], yv: np.ndarray, wv: np.ndarray) -> None:
        ydtype = torch.long if self.task == "classification" else torch.float32
        ty, tw = torch.as_tensor(yt, dtype=ydtype), torch.as_tensor(wt, dtype=torch.float32)
        vy, vw = torch.as_tensor(yv, dtype=ydtype), torch.as_tensor(wv, dtype=torch.float32)
        opt = torch.optim.Adam(self._net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        rng = np.random.default_rng(self.seed)
        best_loss, best_epoch, best_state, stale, epoch = np.inf, 0, None, 0, 0
        for epoch in range(1, self.max_epochs + 1):
            self._net.train()
            order = rng.permutation(len(yt))
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                xb, pad = self._batch(torch, *train, idx)
                opt.zero_grad()
                loss = self._loss(torch, self._net(xb, pad), ty[idx], tw[idx])
                loss.backward()
                opt.step()
            with torch.no_grad():
                out = torch.from_numpy(self._forward(torch, *val))
                val_loss = float(self._loss(torch, out, vy, vw))
            if val_loss < best_loss:  # NaN never improves
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self._net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is None:
            raise ValueError(f"{self.name}: the validation loss was never finite; lower learning_rate")
        self._net.load_state_dict(best_state)
        self._net.eval()
        full = float(np.mean(train[1][:, 0] >= 0)) if len(yt) else 0.0
        self._info.update(best_epoch=best_epoch, epochs_run=epoch, stopped_early=epoch < self.max_epochs,
                          best_validation_loss=best_loss, step_us=self._step_us, full_training_windows=full)

    # -- scoring ---------------------------------------------------------------------------------
    def predict_score(self, x: pl.DataFrame) -> np.ndarray:
        with _torch_session(self.seed, self.num_threads) as torch:
            out = self._forward(torch, *self._inputs(x)).astype(np.float64)
        if self.task == "regression":
            return out[:, 0] * self._info["target_scale"] + self._info["target_mean"]
        e = np.exp(out - out.max(axis=1, keepdims=True))
        proba = e / e.sum(axis=1, keepdims=True)
        return proba[:, 1] if proba.shape[1] == 2 else proba

    def fit_info(self) -> dict[str, Any]:
        return recorded_fit_info(self)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        from alevor_assets.lib.training.torch_io import save_net

        preprocessing = {
            "features": list(self._features), "mean": [float(v) for v in self._mean],
            "scale": [float(v) for v in self._scale], "step_us": int(self._step_us),
            "sequence_length": self.sequence_length, "classes": self._classes, "info": dict(self._info),
        }
        return save_net(Path(directory) / self.artifact_file, self._net, self.name, self._architecture(), preprocessing)

    def load(self, path: Path) -> None:
        from alevor_assets.lib.training.torch_io import load_net

        net, arch, pre = load_net(Path(path), self.name)
        if arch.get("length") != self.sequence_length or pre.get("sequence_length") != self.sequence_length:
            raise ValueError(f"{path}: sequence length {arch.get('length')} differs from the spec's {self.sequence_length}")
        self._net, self._outputs = net, int(arch["outputs"])
        self._features = [str(f) for f in pre["features"]]
        self._mean = np.asarray(pre["mean"], dtype=np.float64)
        self._scale = np.asarray(pre["scale"], dtype=np.float64)
        n = len(self._features)
        if len(self._mean) != n or len(self._scale) != n or arch["inputs"] != n + 1:
            raise ValueError(f"{path}: preprocessing does not match the architecture")
        self._step_us = int(pre["step_us"])
        self._classes = None if pre.get("classes") is None else [int(c) for c in pre["classes"]]
        self._info = dict(pre.get("info") or {})


@dataclass
class _LSTM(_SequenceTrainer):
    kind: ClassVar[str] = "lstm"
    hidden_size: int = 32
    num_layers: int = 1

    def _sizes(self) -> dict[str, Any]:
        _positive_int("hidden_size", self.hidden_size)
        _positive_int("num_layers", self.num_layers)
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers}


@dataclass
class _Transformer(_SequenceTrainer):
    kind: ClassVar[str] = "transformer"
    d_model: int = 32
    nhead: int = 4
    num_layers: int = 2
    dim_feedforward: int = 64

    def _sizes(self) -> dict[str, Any]:
        for key in ("d_model", "nhead", "num_layers", "dim_feedforward"):
            _positive_int(key, getattr(self, key))
        if self.d_model % self.nhead:
            raise ValueError(f"hyperparameter 'd_model' ({self.d_model}) must be a multiple of 'nhead' ({self.nhead})")
        return {"d_model": self.d_model, "nhead": self.nhead, "num_layers": self.num_layers,
                "dim_feedforward": self.dim_feedforward}


@register_trainer
@dataclass
class LSTMClassifierTrainer(_LSTM):
    """LSTM over each row's bar sequence; weighted cross-entropy (classes balanced when
    ``balance_classes``), early stopping on the validation fold's loss."""

    name: ClassVar[str] = "lstm_classifier"
    task: ClassVar[str] = "classification"
    balance_classes: bool = True


@register_trainer
@dataclass
class LSTMRegressorTrainer(_LSTM):
    """LSTM over each row's bar sequence; weighted squared error on a standardized target."""

    name: ClassVar[str] = "lstm_regressor"
    task: ClassVar[str] = "regression"


@register_trainer
@dataclass
class TransformerClassifierTrainer(_Transformer):
    """Transformer encoder over each row's bar sequence (padded bars masked out of attention);
    weighted cross-entropy, early stopping on the validation fold's loss."""

    name: ClassVar[str] = "transformer_classifier"
    task: ClassVar[str] = "classification"
    balance_classes: bool = True


@register_trainer
@dataclass
class TransformerRegressorTrainer(_Transformer):
    """Transformer encoder over each row's bar sequence; weighted squared error on a standardized
    target."""

    name: ClassVar[str] = "transformer_regressor"
    task: ClassVar[str] = "regression"
