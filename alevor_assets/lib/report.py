"""Validation reports: Markdown with plots, as a file next to the model and inline in the UI."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Report:
    title: str
    sections: list[tuple[str, str]] = field(default_factory=list)
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG

    def add(self, heading: str, body: str) -> None:
        self.sections.append((heading, body))

    def markdown(self, inline_plots: bool) -> str:
        """Markdown; plots inline as data URIs (for the UI) or as relative file links."""
        parts = [f"# {self.title}"]
        for heading, body in self.sections:
            parts.append(f"## {heading}\n\n{body}")
        if self.plots:
            parts.append("## Plots")
            for name, png in self.plots.items():
                src = f"data:image/png;base64,{base64.b64encode(png).decode()}" if inline_plots else f"plots/{name}"
                parts.append(f"![{name}]({src})")
        return "\n\n".join(parts) + "\n"

    def write(self, directory: Path) -> Path:
        (directory / "plots").mkdir(parents=True, exist_ok=True)
        for name, png in self.plots.items():
            (directory / "plots" / name).write_bytes(png)
        path = directory / "report.md"
        path.write_text(self.markdown(inline_plots=False))
        return path


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


@cache
def _pyplot() -> Any:
    # Imported on first plot: matplotlib costs ~0.4 s at every process start (code servers, run
    # workers, Celery steps), and most processes draw nothing.
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def feature_importance_plot(importance: dict[str, float], top: int = 20) -> bytes:
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = _pyplot().subplots(figsize=(6, 0.25 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#3b6ea5")
    ax.set_xlabel("share of total gain")
    ax.set_title("Feature importance")
    return _png(fig)


def calibration_plot(y: np.ndarray, score: np.ndarray, bins: int = 10) -> bytes:
    edges = np.quantile(score, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    mean_pred = np.array([score[idx == b].mean() if (idx == b).any() else np.nan for b in range(bins)])
    frac_pos = np.array([y[idx == b].mean() if (idx == b).any() else np.nan for b in range(bins)])
    fig, ax = _pyplot().subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot(mean_pred, frac_pos, marker="o", color="#3b6ea5")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration (test, quantile bins)")
    return _png(fig)


def confusion_plot(matrix: list[list[int]], labels: list[str]) -> bytes:
    m = np.array(matrix)
    fig, ax = _pyplot().subplots(figsize=(3.8, 3.4))
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Confusion matrix (test)")
    return _png(fig)


def equity_plot(ts: np.ndarray, equity: np.ndarray) -> bytes:
    fig, ax = _pyplot().subplots(figsize=(6.5, 3))
    ax.plot(ts.astype("datetime64[us]"), equity, color="#2e7d32")
    ax.set_title("Equity curve (test, after costs)")
    ax.set_ylabel("equity (start = 1)")
    fig.autofmt_xdate()
    return _png(fig)


def scatter_plot(y: np.ndarray, pred: np.ndarray) -> bytes:
    n = len(y)
    take = np.linspace(0, n - 1, min(n, 5000)).astype(int) if n else np.zeros(0, int)
    fig, ax = _pyplot().subplots(figsize=(4.5, 4.5))
    ax.scatter(pred[take], y[take], s=3, alpha=0.4, color="#3b6ea5")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Predicted vs actual (test)")
    return _png(fig)
