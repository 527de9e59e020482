"""Live alert latency: ``python -m bench.live`` (run it under ``flock /work/bench.lock``).

Commits trades into PostgreSQL at a steady rate (default 1,000 per second across 200 tokens, one
commit every 100 ms) while ``python -m alevor_assets live`` runs against the same database, and
plants pumps: a token's price jumps 10 % within one 2-second bar on a burst of buy volume, the
move the classic pump rule flags (a fresh ALEVOR_HOME has no promoted model, so the shipped
detectors serve their declared fallback, ``pump_rule``: 5-minute return >= 5 % on a volume
z-score >= 3; each pump is therefore alerted once by each of the two shipped detectors).

Per planted pump and detector: the time from the commit of the trade that completes the alerted
bar (the pump token's last trade before the bar's end) to the moment the alert row is readable
in ``$ALEVOR_HOME/live/alerts`` (polled every 0.2 s); the median and worst over the run, missed
pumps, duplicate alerts, alerts away from any pump, and the live process's CPU seconds (user +
system, start-up included) per minute of market time.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import psycopg2

from alevor_assets.lib.live.store import LiveStore
from alevor_assets.lib.sources.pg_sample import SCHEMA_DDL, ensure_database
from alevor_assets.lib.specs import model_specs

ROOT = Path(__file__).resolve().parent.parent
SLOT = 0.1  # seconds between commits


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset(url: str, tokens: list[str]) -> None:
    ensure_database(url)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute('DROP TABLE IF EXISTS "Trade", "Token", "LabelledEvent"')
        cur.execute(SCHEMA_DDL)
        for t in tokens:
            cur.execute('INSERT INTO "Token" ("address", "name", "symbol") VALUES (%s, %s, %s)', [t, t, t])


class Market:
    """Random-walk tokens, trades spread uniformly; planted pumps."""

    def __init__(self, tokens: list[str], rate: float, seed: int = 5):
        self.rng = np.random.default_rng(seed)
        self.tokens, self.rate = tokens, rate
        self.price = np.exp(self.rng.uniform(-3, 3, len(tokens)))
        self.pumps: list[tuple[int, float]] = []  # (token index, burst start epoch s)

    def slot(self, t0: float, t1: float) -> pl.DataFrame:
        n = self.rng.poisson(self.rate * (t1 - t0))
        who = self.rng.integers(0, len(self.tokens), n)
        ts = np.sort(self.rng.uniform(t0, t1, n))
        side = self.rng.random(n) < 0.5
        amount = self.rng.lognormal(0.0, 0.6, n)
        price = np.empty(n)
        for i in range(n):
            self.price[who[i]] *= np.exp(self.rng.normal(0.0, 0.0002))
            price[i] = self.price[who[i]]
        rows = [pl.DataFrame({"token": who, "ts": ts, "price": price, "amount": amount, "buy": side})]
        for k, start in self.pumps:  # a 1.2 s burst of buys lifting the price 10 %, inside one bar
            lo, hi = max(t0, start), min(t1, start + 1.2)
            if lo < hi:
                m = 40
                bts = np.sort(self.rng.uniform(lo, hi, m))
                base = self.price[k]
                steps = np.exp(np.log(1.10) * (hi - lo) / 1.2 / m) ** np.arange(1, m + 1)
                self.price[k] = base * steps[-1]
                rows.append(pl.DataFrame({"token": np.full(m, k), "ts": bts, "price": base * steps,
                                          "amount": self.rng.lognormal(2.0, 0.3, m), "buy": np.ones(m, bool)}))
        return pl.concat(rows).sort("ts")


def _commit(conn, frame: pl.DataFrame, ids: dict[int, int]) -> None:
    buf = io.StringIO()
    frame.select(
        pl.col("token").replace_strict(ids, return_dtype=pl.Int64), "price", "amount",
        pl.when("buy").then(pl.lit("buy")).otherwise(pl.lit("sell")),
        pl.from_epoch((pl.col("ts") * 1e6).cast(pl.Int64), "us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
    ).write_csv(buf, include_header=False, float_precision=None)
    buf.seek(0)
    with conn.cursor() as cur:
        cur.copy_expert('COPY "Trade" ("tokenId", "price", "amount", "type", "timestamp") FROM STDIN WITH (FORMAT csv)', buf)
    conn.commit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=12.0, help="market time to generate")
    ap.add_argument("--rate", type=float, default=1000.0, help="trades per second")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--pumps", type=int, default=8, help="planted pumps, from minute 6 on")
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/alevor_live_bench")
    args = ap.parse_args()
    tokens = [f"TK{i:03d}" for i in range(args.tokens)]
    _reset(args.url, tokens)
    with psycopg2.connect(args.url) as conn, conn.cursor() as cur:
        cur.execute('SELECT "address", "id" FROM "Token"')
        by_name = dict(cur.fetchall())
    ids = {i: by_name[t] for i, t in enumerate(tokens)}
    home = Path(tempfile.mkdtemp(prefix="alevor-live-bench-"))
    today = datetime.now(timezone.utc).date()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEVOR_", "DAGSTER_"))}
    env.update(ALEVOR_HOME=str(home), ALEVOR_SOURCE="postgres", ALEVOR_PG_URL=args.url, ALEVOR_START_DATE=today.isoformat())
    log = open(home / "live.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "alevor_assets", "live"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    market = Market(list(range(args.tokens)), args.rate)
    start = time.time()
    end = start + args.minutes * 60
    first_pump = start + 6 * 60
    gap = (end - 60 - first_pump) / max(args.pumps, 1)
    pump_tokens = market.rng.choice(args.tokens, args.pumps, replace=False)
    for i, k in enumerate(pump_tokens):
        t = first_pump + i * gap
        market.pumps.append((int(k), float(np.floor(t / 2) * 2 + 0.3)))  # 0.3 s into a 2 s bar
    pumped = {k for k, _ in market.pumps}
    commits: dict[int, list[tuple[float, float]]] = {k: [] for k in pumped}  # token -> (trade ts, commit time)
    seen: dict[tuple[str, str, int], float] = {}
    store = LiveStore(home)
    committed, lag = 0, 0.0
    conn = psycopg2.connect(args.url)
    t0 = start
    while t0 < end:
        t1 = t0 + SLOT
        time.sleep(max(0.0, t1 - time.time()))
        frame = market.slot(t0, t1)
        _commit(conn, frame, ids)
        at = time.time()
        lag = max(lag, at - t1)
        committed += frame.height
        for k, ts in frame.filter(pl.col("token").is_in(list(pumped))).select("token", "ts").iter_rows():
            commits[k].append((ts, at))
        t0 = t1
        if int(t0 * 10) % 2 == 0:
            _observe(store, seen)
    cpu_market = _cpu_seconds(proc.pid)
    deadline = time.time() + 90
    while time.time() < deadline:
        _observe(store, seen)
        time.sleep(0.2)
    cpu = _cpu_seconds(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    conn.close()
    _report(args, store, seen, market, commits, tokens, committed, lag, cpu_market, cpu, home)


def _observe(store: LiveStore, seen: dict) -> None:
    now = time.time()
    for path in store.alerts_dir.glob("alerts-*.parquet"):
        if path.name in seen:
            continue
        seen[path.name] = now
        for spec, token, ts in pl.read_parquet(path).select("spec", "token", pl.col("ts").dt.epoch("us")).iter_rows():
            seen.setdefault((spec, token, ts), now)


def _report(args, store, seen, market, commits, tokens, committed, lag, cpu_market, cpu, home) -> None:
    alerts = store.alerts()
    dupes = alerts.height - alerts.unique(["spec", "token", "ts"]).height
    rows, latencies, missed, matched = [], {}, 0, set()
    # Every detector the service serves, so one that raised no alert at all counts its pumps as missed.
    detectors = sorted({s.name for s in model_specs() if s.detects_events} | set(alerts["spec"].unique().to_list()))
    for spec in detectors:
        latencies[spec] = []
        for k, burst in market.pumps:
            mine = alerts.filter((pl.col("spec") == spec) & (pl.col("token") == tokens[k])
                                 & pl.col("ts").dt.epoch("us").is_between(int((burst - 4) * 1e6), int((burst + 60) * 1e6)))
            if mine.height == 0:
                missed += 1
                rows.append((spec, tokens[k], "MISSED", "", ""))
                continue
            ts_us = int(mine["ts"].dt.epoch("us")[0])
            matched.add((spec, tokens[k], ts_us))
            bar_end = ts_us / 1e6 + 2
            completing = max((c for c in commits[k] if c[0] < bar_end), key=lambda c: c[0])
            latency = seen[(spec, tokens[k], ts_us)] - completing[1]
            latencies[spec].append(latency)
            rows.append((spec, tokens[k], datetime.fromtimestamp(ts_us / 1e6, timezone.utc).strftime("%H:%M:%S"),
                         f"{mine.height}", f"{latency:.1f}"))
    away = alerts.filter(~pl.struct("spec", "token", pl.col("ts").dt.epoch("us")).map_elements(
        lambda r: (r["spec"], r["token"], r["ts"]) in matched, return_dtype=pl.Boolean)).height
    print(f"{committed} trades committed over {args.minutes:g} min ({committed / (args.minutes * 60):.0f}/s), "
          f"{args.tokens} tokens, commit every {SLOT:g} s (worst commit lag {lag:.2f} s); {len(market.pumps)} planted pumps")
    print("| detector | token | alerted bar | alerts in pump window | latency s |\n|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("\n| detector | pumps | alerted | median s | worst s |\n|---|---|---|---|---|")
    for spec, values in latencies.items():
        print(f"| {spec} | {len(market.pumps)} | {len(values)} | "
              f"{statistics.median(values):.1f} | {max(values):.1f} |" if values else f"| {spec} | {len(market.pumps)} | 0 | - | - |")
    print(f"\nmissed: {missed}; duplicate alerts: {dupes}; alerts away from planted pumps: {away}")
    print(f"live process CPU: {cpu_market:.1f} s during {args.minutes:g} min of market "
          f"({cpu_market / args.minutes:.1f} CPU s per market minute, start-up included); {cpu:.1f} s at exit")
    tail = (home / "live.log").read_text().splitlines()
    ticks = [ln for ln in tail if " tick: " in ln]
    print("last tick lines of the live log:\n  " + "\n  ".join(ticks[-3:]))
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
