"""Trades from files: CSV (plain, ``.csv.gz`` or inside a ``.zip``) and Parquet, matched by a glob.

Three formats, chosen with ``fmt`` or detected per file from its header (``fmt="auto"``):

``canonical``
    ``token, ts, price, amount, side`` and optionally ``trade_id`` (CSV or Parquet). ``ts`` is
    ISO-8601 text that carries a zone (``Z`` or ``+hh:mm``), an integer epoch, or (Parquet) a time
    zone-aware timestamp column.
``ccxt``
    ccxt's trades export ``symbol,timestamp,datetime,side,price,amount`` (``timestamp`` in epoch
    milliseconds; ``datetime`` and extra columns such as ``cost``, ``fee``, ``takerOrMaker`` are
    ignored). The token is ``symbol`` as is (``BTC/USDT``). An ``id`` column is the trade id when
    every value in the file is an integer.
``binance_aggtrades``
    Binance's public aggTrades CSV ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,
    transact_time,is_buyer_maker[,is_best_match]``, with or without a header line (a first line of
    7 or 8 fields that are all numbers or ``true``/``false`` is data). The token is the file name
    (the zip member's name for a zip) up to its first ``-``; ``side`` is ``sell`` when
    ``is_buyer_maker`` is true (the taker sold), else ``buy``.

Integer epoch timestamps are read by magnitude, value by value: ``>= 1e14`` microseconds (Binance
spot files from 2025), ``>= 1e11`` milliseconds, otherwise seconds. This is unambiguous for any
instant between 1973 and 5138, so every file whose values share one unit (and a file that mixes
them) is read right.

Every row gets ``_origin``: ``<path>:<line>`` with 1-based physical line numbers (the header is
line 1), ``<zip path>!<member>:<line>`` inside a zip, ``<path>:row <n>`` (0-based) for Parquet.
A row that cannot be converted (wrong number of fields, a value of the wrong type, a timestamp
without zone, an unknown side) is returned in ``TradeBatch.rejected`` with the rule it broke and
its text (escaped to printable ASCII, at most 200 characters), never dropped. A rejected row whose
time is known belongs to that day; one whose time is unknown is returned for every day read. A
file (or zip member) without any row, 0 bytes or only a header, is listed in
``TradeBatch.empty_inputs`` for every day read; a truncated or corrupt compressed stream is a
:class:`SourceError` that names the file and the last whole line. Values that parse but are implausible (price ``<= 0``,
``NaN``) pass through unchanged: the contract check downstream reports them with their origin.

Derived trade ids
-----------------
A row without a trade id from its source (a canonical file without ``trade_id`` or with an empty
value; a ccxt export without an all-integer ``id`` column) gets::

    trade_id = ts_ms * 4096 + k

``ts_ms`` is the trade's epoch millisecond (``floor(ts / 1 ms)``) and ``k`` (0..4095) is the
0-based position of the trade among the id-less trades of the same token in the same millisecond,
ordered by (file path, zip member, line or row). Before numbering, exact duplicates are resolved:
two rows are identical when token, ts, side, price, amount and source trade id (none, for id-less
rows) are equal. Within one file (one zip member) the n-th identical row is a separate trade (the
same price and size filled twice) and is kept; the n-th occurrence of a row in one file and its
n-th occurrence in another file are the same trade (overlapping exports) and appear once, taken
from the file that comes first in path order. The ids are therefore time-ordered, unique per token
and deterministic: the same files give the same ids on every read, whichever days are read. More
than 4096 id-less trades of one token in one millisecond raise :class:`SourceError`.

Reading is fast-path first: Polars reads each CSV with every column as text and the values are
cast in bulk; only a file whose structure Polars cannot split into rows of the header's width goes
through a line-by-line reader that finds the bad lines. After the first read of a file, its time
span, per-token first trade and undated rejects are cached by (path, mtime, size), so reading day
after day only parses the files that can hold that day.

Where things are
----------------
``formats`` (the files a glob takes, zip members, the formats and their detection), ``parsing``
(CSV and Parquet into a table of text or typed columns, fast path first), ``conversion`` (a table
into typed trades and rejected rows), ``dedupe`` (duplicates across files, derived trade ids) and
``reading`` (``FileTradeReader``, one file's parse and the caches across reads).
"""

from alevor_assets.lib.sources.files.formats import FORMATS
from alevor_assets.lib.sources.files.reading import FileTradeReader

__all__ = ["FORMATS", "FileTradeReader"]
