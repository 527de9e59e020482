-- description: >
--   One row per token and UTC day: first and last active minute, open/high/low/close, volume,
--   quote volume, VWAP, trade count, buy share and the day's return, from the day's 1-minute bars.
--   A compact universe table for screening tokens (liquidity, activity) before modelling.
-- group: market_data
-- inputs:
--   bars: {asset: bars, keys: {interval: 1m}}
-- unique: [token]
--
-- Float sums are ordered (ORDER BY ts) so a re-run adds the same numbers in the same order and
-- writes the same bytes; DuckDB's parallel aggregation would otherwise vary in the last bit.
SELECT
    token,
    min(ts) AS first_active_minute,
    max(ts) AS last_active_minute,
    arg_min(open, ts) AS open,
    max(high) AS high,
    min(low) AS low,
    arg_max(close, ts) AS close,
    sum(volume ORDER BY ts) AS volume,
    sum(quote_volume ORDER BY ts) AS quote_volume,
    sum(quote_volume ORDER BY ts) / sum(volume ORDER BY ts) AS vwap,
    sum(trade_count) AS trade_count,
    sum(buy_volume ORDER BY ts) / sum(volume ORDER BY ts) AS buy_share,
    count(*) AS active_minutes,
    arg_max(close, ts) / arg_min(open, ts) - 1 AS day_return
FROM bars
GROUP BY token
ORDER BY token
