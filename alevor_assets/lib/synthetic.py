"""A deterministic generator of realistic trades, with planted pump-and-dump episodes.

Every (seed, token, day) has its own random streams, so any day can be generated on its own and
always comes out the same, whichever days were generated before and in whatever order. The price
path is continuous across days: each day is a Brownian bridge between daily anchor prices that
follow a random walk with trending and ranging days.

What it models, per token:

- trade arrivals as a cluster process (bursts of trades, a third of follow-ups in the same
  millisecond, like multi-fill "rush" orders), with a daily activity cycle and intraday volatility
  clustering;
- heavy-tailed trade sizes (log-normal body, Pareto tail) and a bid-ask bounce;
- taker sides that lean with the next price move (order flow carries information);
- new token launches inside ``launch_window_days`` after ``launch_start``: tiny prices, high
  volatility and a burst of activity that decays over the first hours, and more pumps while young;
- pump-and-dump episodes: a short accumulation, an accelerating pump with buy pressure and volume
  up to ~20x, then a dump back to the pre-pump level. Their ground truth is returned by
  :func:`events_for_day` as ``token, type (pump|dump), start_time, end_time``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import polars as pl

from alevor_assets.lib.schemas import UTC_US

DAY_US = 86_400_000_000
_SYLLABLES = [
    "ba", "ko", "mi", "ra", "zu", "pe", "lo", "ti", "na", "do", "fu", "ge", "sa", "vo", "xi",
    "qua", "mo", "re", "ky", "ju", "wa", "bo", "ne", "so", "ha", "pi", "ta", "ze", "lu", "ro",
]
# Trade ids are day_number * 2**26 + sequence, unique per token and stable under regeneration.
_IDS_PER_DAY = 1 << 26
_GEN_EPOCH = date(2000, 1, 1)


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 7
    tokens: int = 40
    trades_per_token_day: float = 4000.0
    new_token_fraction: float = 0.3
    launch_start: date = date(2024, 1, 1)
    launch_window_days: int = 14
    pumps_per_token_day: float = 0.3


@dataclass(frozen=True)
class _Token:
    index: int
    token: str
    symbol: str
    name: str
    address: str
    created_at_us: int  # epoch microseconds
    is_new: bool
    log_price0: float
    daily_vol: float
    activity: float
    half_spread: float
    size_scale: float


@dataclass(frozen=True)
class _Episode:
    """A transient move: optional accumulation, a run-up (or -down) to ``magnitude`` (log price),
    then a return to the baseline. Only ``pump`` episodes are labelled; ``rally`` and ``selloff``
    are unlabelled look-alikes (organic bursts, liquidations) that a detector must not flag."""

    kind: str  # "pump", "rally" or "selloff"
    start_us: int  # accumulation starts
    pump_us: int  # the move starts (a pump's event start)
    peak_us: int  # the move peaks (pump ends, dump starts)
    end_us: int  # back at the baseline (dump ends)
    magnitude: float  # peak log-price bump (negative for a selloff)
    buy_up: float  # taker buy probability during the move
    buy_down: float  # ... during the return
    rate_up: float  # peak extra trade intensity, multiples of the base rate
    rate_down: float


def _epoch_us(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1_000_000


@lru_cache(maxsize=16)
def _universe(cfg: SyntheticConfig) -> tuple[_Token, ...]:
    tokens = []
    seen: set[str] = set()
    launch0 = _epoch_us(cfg.launch_start)
    for i in range(cfg.tokens):
        rng = np.random.default_rng([cfg.seed, i, 1])
        n_syl = int(rng.integers(2, 4))
        base = "".join(_SYLLABLES[j] for j in rng.integers(0, len(_SYLLABLES), n_syl)).upper()
        symbol = base
        k = 2
        while symbol in seen:
            symbol = f"{base}{k}"
            k += 1
        seen.add(symbol)
        is_new = bool(rng.random() < cfg.new_token_fraction)
        if is_new:
            created = launch0 + int(rng.random() * cfg.launch_window_days * DAY_US)
            log_price0 = float(np.log(10.0) * rng.uniform(-9, -3))
            daily_vol = float(rng.uniform(0.10, 0.30))
        else:
            created = launch0 - int(rng.uniform(30, 720) * DAY_US)
            log_price0 = float(np.log(10.0) * rng.uniform(-4, 3))
            daily_vol = float(rng.uniform(0.02, 0.08))
        created -= created % 1000  # millisecond timestamps, like the trades
        digest = hashlib.sha256(f"alevor-synthetic:{cfg.seed}:{i}".encode()).hexdigest()
        tokens.append(
            _Token(
                index=i,
                token=symbol,
                symbol=symbol,
                name=f"{symbol.title()} Token",
                address="0x" + digest[:40],
                created_at_us=created,
                is_new=is_new,
                log_price0=log_price0,
                daily_vol=daily_vol,
                activity=float(cfg.trades_per_token_day * rng.lognormal(0.0, 0.6) / np.exp(0.18)),
                half_spread=float(rng.uniform(0.0002, 0.003)),
                size_scale=float(rng.lognormal(np.log(150.0), 0.7)),
            )
        )
    return tuple(tokens)


def tokens_for_day(cfg: SyntheticConfig, day: date) -> pl.DataFrame:
    """Metadata of every token that exists by the end of ``day``."""
    end = _epoch_us(day) + DAY_US
    rows = [t for t in _universe(cfg) if t.created_at_us < end]
    return pl.DataFrame(
        {
            "token": [t.token for t in rows],
            "symbol": [t.symbol for t in rows],
            "name": [t.name for t in rows],
            "address": [t.address for t in rows],
            "created_at": pl.Series([t.created_at_us for t in rows], dtype=pl.Int64),
        }
    ).with_columns(pl.col("created_at").cast(UTC_US))


def _anchor_log_prices(cfg: SyntheticConfig, tok: _Token, day_index: int) -> tuple[float, float, int]:
    """Log price at the start of day ``day_index`` (days since the token's first day) and of the
    next day, plus the day's regime (1 trend up, -1 trend down, 0 range)."""
    n = day_index + 1
    # Separate streams per array keep every prefix identical whatever n is.
    u = np.random.default_rng([cfg.seed, tok.index, 2]).random(n)
    z = np.random.default_rng([cfg.seed, tok.index, 3]).standard_normal(n)
    regime = np.where(u < 0.2, 1, np.where(u < 0.4, -1, 0))
    trend = np.abs(1.5 + 0.5 * z)
    ret = tok.daily_vol * np.where(regime == 0, 0.4 * z, regime * trend)
    # Mild pull towards the launch price keeps decades of simulated history in a sane range.
    levels = tok.log_price0 + np.concatenate([[0.0], np.cumsum(ret)])
    start = float(levels[day_index]) * 0.999 + tok.log_price0 * 0.001
    end = float(levels[day_index + 1]) * 0.999 + tok.log_price0 * 0.001
    return start, end, int(regime[day_index])


def _first_day(tok: _Token) -> int:
    return (tok.created_at_us // DAY_US)


def _episodes(cfg: SyntheticConfig, tok: _Token, day_number: int) -> list[_Episode]:
    """Episodes whose move starts on day ``day_number`` (days since 1970): pump-and-dumps, and
    twice as many unlabelled rallies and selloffs."""
    day_start = day_number * DAY_US
    active_from = max(day_start, tok.created_at_us + 600_000_000)
    if active_from >= day_start + DAY_US:
        return []
    age_days = (day_start - tok.created_at_us) / DAY_US
    youth = 4.0 if age_days < 2 else 1.0
    out = []
    rng = np.random.default_rng([cfg.seed, tok.index, day_number, 20])
    for _ in range(int(rng.poisson(cfg.pumps_per_token_day * youth))):
        pump = _ms(rng.uniform(active_from, day_start + DAY_US))
        pre, up, down = (_ms(rng.uniform(a, b) * 1e6) for a, b in ((120, 420), (180, 1200), (120, 600)))
        out.append(_Episode("pump", max(pump - pre, tok.created_at_us), pump, pump + up, pump + up + down,
                            float(rng.uniform(0.08, 0.9)), 0.74, 0.3, 12.0, 11.0))
    # Separate stream: decoys never change where the pumps are.
    rng = np.random.default_rng([cfg.seed, tok.index, day_number, 21])
    for _ in range(int(rng.poisson(2.0 * cfg.pumps_per_token_day))):
        t0 = _ms(rng.uniform(active_from, day_start + DAY_US))
        up, back = _ms(rng.uniform(60, 600) * 1e6), _ms(rng.uniform(600, 2400) * 1e6)
        if rng.random() < 0.6:
            out.append(_Episode("rally", t0, t0, t0 + up, t0 + up + back, float(rng.uniform(0.03, 0.3)), 0.68, 0.47, 6.0, 2.0))
        else:
            out.append(_Episode("selloff", t0, t0, t0 + up, t0 + up + back, -float(rng.uniform(0.03, 0.25)), 0.3, 0.53, 6.0, 2.0))
    return out


def _ms(us: float) -> int:
    return int(us) - int(us) % 1000


def _episodes_touching(cfg: SyntheticConfig, tok: _Token, day_number: int) -> list[_Episode]:
    # An episode lasts well under a day, so only the previous day's can spill into this one.
    day_start, day_end = day_number * DAY_US, (day_number + 1) * DAY_US
    eps = _episodes(cfg, tok, day_number - 1) + _episodes(cfg, tok, day_number)
    return [e for e in eps if e.start_us < day_end and e.end_us > day_start]


def events_for_day(cfg: SyntheticConfig, day: date) -> pl.DataFrame:
    """Ground truth pump and dump intervals that overlap ``day``."""
    day_number = _epoch_us(day) // DAY_US
    rows: list[tuple[str, str, int, int]] = []
    for tok in _universe(cfg):
        for e in _episodes_touching(cfg, tok, day_number):
            if e.kind != "pump":
                continue
            day_start, day_end = day_number * DAY_US, (day_number + 1) * DAY_US
            if e.pump_us < day_end and e.peak_us > day_start:
                rows.append((tok.token, "pump", e.pump_us, e.peak_us))
            if e.peak_us < day_end and e.end_us > day_start:
                rows.append((tok.token, "dump", e.peak_us, e.end_us))
    df = pl.DataFrame(
        rows, schema={"token": pl.Utf8, "type": pl.Utf8, "start_time": pl.Int64, "end_time": pl.Int64},
        orient="row",
    )
    return df.with_columns(pl.col("start_time", "end_time").cast(UTC_US)).sort("token", "start_time", "type")


def _bump(t: np.ndarray, episodes: list[_Episode]) -> tuple[np.ndarray, np.ndarray]:
    """Log-price bump and buy-probability override (nan = none) at ``t``."""
    bump = np.zeros(t.shape)
    p_buy = np.full(t.shape, np.nan)
    for e in episodes:
        pre = (t >= e.start_us) & (t < e.pump_us)
        s = (t[pre] - e.start_us) / max(e.pump_us - e.start_us, 1)
        bump[pre] += 0.05 * e.magnitude * s**2
        p_buy[pre] = 0.5 + (e.buy_up - 0.5) * 0.4
        up = (t >= e.pump_us) & (t < e.peak_us)
        s = (t[up] - e.pump_us) / (e.peak_us - e.pump_us)
        start = 0.05 if e.start_us < e.pump_us else 0.0
        bump[up] += e.magnitude * (start + (1 - start) * s**2)
        p_buy[up] = e.buy_up
        down = (t >= e.peak_us) & (t < e.end_us)
        s = (t[down] - e.peak_us) / (e.end_us - e.peak_us)
        bump[down] += e.magnitude * (1.0 - s) ** 1.5
        p_buy[down] = e.buy_down
    return bump, p_buy


def _episode_rate(grid_s: np.ndarray, e: _Episode) -> np.ndarray:
    """Extra trade intensity (multiples of the base rate) on a one-second grid."""
    pre = (grid_s >= e.start_us / 1e6) & (grid_s < e.pump_us / 1e6)
    up = (grid_s >= e.pump_us / 1e6) & (grid_s < e.peak_us / 1e6)
    down = (grid_s >= e.peak_us / 1e6) & (grid_s < e.end_us / 1e6)
    rate = np.zeros(grid_s.shape)
    rate[pre] = 0.5
    s_up = (grid_s[up] - e.pump_us / 1e6) / ((e.peak_us - e.pump_us) / 1e6)
    rate[up] = 1.0 + (e.rate_up - 1.0) * s_up
    s_dn = (grid_s[down] - e.peak_us / 1e6) / ((e.end_us - e.peak_us) / 1e6)
    rate[down] = e.rate_down * (1.0 - s_dn) + 0.5
    return rate


def _arrivals(rng: np.random.Generator, tok: _Token, lo_us: int, hi_us: int, day_start: int,
              episodes: list[_Episode]) -> np.ndarray:
    """Sorted trade timestamps (epoch µs, millisecond resolution) in ``[lo_us, hi_us)``."""
    minutes = np.arange(day_start, day_start + DAY_US, 60_000_000)
    frac = (minutes - day_start) / DAY_US
    diurnal = 1.0 + 0.5 * np.sin(2 * np.pi * (frac - 0.35))
    rate = tok.activity * diurnal / diurnal.sum()  # expected trades per minute
    if tok.is_new:
        age_h = np.maximum(minutes - tok.created_at_us, 0) / 3.6e9
        rate = rate * (1.0 + 8.0 * np.exp(-age_h / 6.0))
    rate = np.where((minutes + 60_000_000 > lo_us) & (minutes < hi_us), rate, 0.0)
    mean_cluster = 2.5
    parents_per_min = rng.poisson(rate / mean_cluster)
    n_par = int(parents_per_min.sum())
    par_t = np.repeat(minutes, parents_per_min) + (rng.random(n_par) * 60_000_000).astype(np.int64)
    times = [par_t]
    # Episode trades: inhomogeneous Poisson on a one-second grid while the episode runs.
    base_per_s = tok.activity / 86_400.0
    for e in episodes:
        g0, g1 = max(e.start_us, lo_us) // 1_000_000, min(e.end_us, hi_us) // 1_000_000
        if g1 <= g0:
            continue
        grid = np.arange(g0, g1, dtype=np.int64)
        counts = rng.poisson(_episode_rate(grid.astype(float), e) * base_per_s * 4.0 / mean_cluster)
        times.append(np.repeat(grid * 1_000_000, counts) + (rng.random(int(counts.sum())) * 1e6).astype(np.int64))
    parents = np.sort(np.concatenate(times))
    # Each parent spawns follow-ups: a third in the same millisecond, the rest exponentially later.
    kids = rng.geometric(1.0 / mean_cluster, parents.size) - 1
    n_kids = int(kids.sum())
    same = rng.random(n_kids) < 0.35
    gaps = np.where(same, 0, (rng.exponential(1.5e6, n_kids)).astype(np.int64))
    if n_kids:
        owner = np.repeat(np.arange(parents.size), kids)
        cum = np.cumsum(gaps)
        before = np.concatenate([[0], cum])[np.concatenate([[0], np.cumsum(kids)[:-1]])]
        child_t = parents[owner] + cum - before[owner]
    else:
        child_t = np.zeros(0, np.int64)
    t = np.concatenate([parents, child_t])
    t = t - t % 1000
    t = t[(t >= lo_us) & (t < hi_us)]
    t.sort(kind="stable")
    return t


def trades_for_day(cfg: SyntheticConfig, day: date, tokens: list[str] | None = None) -> pl.DataFrame:
    """All trades of ``day`` (optionally only ``tokens``), sorted by token, ts, trade_id."""
    day_start = _epoch_us(day)
    day_number = day_start // DAY_US
    frames = []
    for tok in _universe(cfg):
        if tokens is not None and tok.token not in tokens:
            continue
        frame = _token_day(cfg, tok, day_number)
        if frame is not None:
            frames.append(frame)
    if not frames:
        return pl.DataFrame(
            schema={"token": pl.Utf8, "trade_id": pl.Int64, "ts": UTC_US, "price": pl.Float64,
                    "amount": pl.Float64, "side": pl.Utf8}
        )
    return pl.concat(frames).sort("token", "ts", "trade_id")


def _token_day(cfg: SyntheticConfig, tok: _Token, day_number: int) -> pl.DataFrame | None:
    day_start, day_end = day_number * DAY_US, (day_number + 1) * DAY_US
    if tok.created_at_us >= day_end:
        return None
    lo = max(day_start, tok.created_at_us)
    rng = np.random.default_rng([cfg.seed, tok.index, day_number, 10])
    episodes = _episodes_touching(cfg, tok, day_number)
    t = _arrivals(rng, tok, lo, day_end, day_start, episodes)
    n = t.size
    if n == 0:
        return None
    if n >= _IDS_PER_DAY:
        raise ValueError(f"synthetic day too large for token {tok.token}: {n} trades")
    day_index = day_number - _first_day(tok)
    l0, l1, regime = _anchor_log_prices(cfg, tok, day_index)
    # Brownian bridge from the day's anchor to the next day's, with minute-level volatility
    # clustering; a ranging day also mean-reverts inside the bridge.
    span = day_end - lo
    vol_min = np.exp(0.5 * _ar1(rng, 1440, 0.97))
    vol_at = vol_min[np.minimum((t - day_start) // 60_000_000, 1439)]
    sigma = tok.daily_vol * (1.3 if regime == 0 else 1.0)
    dt = np.diff(np.concatenate([[lo], t])) / DAY_US
    w = np.cumsum(rng.standard_normal(n) * sigma * np.sqrt(dt) * vol_at)
    w_end = w[-1] + rng.standard_normal() * sigma * np.sqrt((day_end - t[-1]) / DAY_US)
    frac = (t - lo) / span
    x = l0 + w - frac * (w_end - (l1 - l0))
    bump, p_override = _bump(t.astype(float), episodes)
    logp = x + bump
    # Taker side leans with the next move of the efficient price; episodes override the lean.
    nxt = np.diff(np.concatenate([logp, [l1]]))
    scale = sigma * np.sqrt(1.0 / max(n, 1)) + 1e-12
    p_buy = 1.0 / (1.0 + np.exp(-np.clip(nxt / scale, -30, 30) * 0.8))
    p_buy = np.where(np.isnan(p_override), p_buy, p_override)
    buy = rng.random(n) < p_buy
    mid = np.exp(logp)
    price = mid * np.where(buy, 1.0 + tok.half_spread, 1.0 - tok.half_spread)
    size = tok.size_scale * rng.lognormal(0.0, 1.0, n)
    tail = rng.random(n) < 0.05
    size[tail] *= 1.0 + rng.pareto(1.2, int(tail.sum()))
    size *= np.where(np.isnan(p_override), 1.0, 1.6)
    amount = size / price
    ids = (day_number - _epoch_us(_GEN_EPOCH) // DAY_US) * _IDS_PER_DAY + np.arange(n)
    return pl.DataFrame(
        {
            "token": pl.Series([tok.token] * n, dtype=pl.Utf8),
            "trade_id": ids.astype(np.int64),
            "ts": pl.Series(t.astype(np.int64)).cast(UTC_US),
            "price": price,
            "amount": amount,
            "side": np.where(buy, "buy", "sell"),
        }
    )


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """A stationary AR(1) path with unit variance."""
    eps = rng.standard_normal(n) * np.sqrt(1 - phi**2)
    eps[0] = rng.standard_normal()
    # Imported here: scipy.signal costs ~0.6 s at every process start (it loads scipy.stats).
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -phi], eps)


def day_range(start: date, days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]
