"""Label strategies: pluggable, registered by name, configured from a model spec.

Add your own in a few lines::

    from dataclasses import dataclass
    import polars as pl
    from alevor_assets import LabelStrategy, register_label_strategy

    @register_label_strategy
    @dataclass(frozen=True)
    class BigMove(LabelStrategy):
        name = "big_move"
        task = "classification"
        threshold: float = 0.02

        def compute(self, ctx):
            bars = ctx.bars.sort("token", "ts")
            nxt = pl.col("close").shift(-1).over("token")
            return bars.select(
                "token", "interval", "ts",
                label=((nxt / pl.col("close") - 1).abs() > self.threshold).cast(pl.Int64),
                horizon_end=pl.col("ts").shift(-1).over("token") + ctx.step,
            ).drop_nulls()

Where things are:

- ``base``: what every strategy fulfils (output columns, ``horizon_end``, look-ahead and
  look-back, the time convention), the registry and ``finalize_labels``;
- ``kernels``: the compiled per-token loops the strategies share, and the bars as arrays;
- ``events``: pump detection (``pump_events``, ``early_pump``, ``heuristic_pump_dump``);
- ``returns``: the price path ahead (``forward_return``, ``direction``, ``signal_consistency``,
  ``regime``);
- ``barriers``: ``triple_barrier`` and its meta-label ``triple_barrier_meta``;
- ``costs``: trades after costs (``edge``, ``friction``).

Importing this package imports every strategy module, which registers the built-in strategies.
"""

from alevor_assets.lib.labels.base import (
    LABEL_OUTPUT,
    REALIZED_RETURN,
    LabelContext,
    LabelStrategy,
    finalize_labels,
    label_strategies,
    make_label_strategy,
    register_label_strategy,
)
from alevor_assets.lib.labels.events import EarlyPump, HeuristicPumpDump, PumpEvents
from alevor_assets.lib.labels.returns import Direction, ForwardReturn, Regime, SignalConsistency, forward_close
from alevor_assets.lib.labels.barriers import TripleBarrier, TripleBarrierMeta
from alevor_assets.lib.labels.costs import Edge, Friction
from alevor_assets.lib.labels.kernels import _arrays, _ewm_std_log_returns  # noqa: F401 - the tests call them

__all__ = [
    "LABEL_OUTPUT",
    "REALIZED_RETURN",
    "Direction",
    "EarlyPump",
    "Edge",
    "ForwardReturn",
    "Friction",
    "HeuristicPumpDump",
    "LabelContext",
    "LabelStrategy",
    "PumpEvents",
    "Regime",
    "SignalConsistency",
    "TripleBarrier",
    "TripleBarrierMeta",
    "finalize_labels",
    "forward_close",
    "label_strategies",
    "make_label_strategy",
    "register_label_strategy",
]
