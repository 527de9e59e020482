"""Fuzzing the files source through the real raw_trades asset (Hypothesis).

Each case is a trade file (plain or gzip) of random valid trades of one day, some of the next day,
and random corruptions of known lines (bad numbers, sides, timestamps, tokens, field counts, raw
bytes, an overflowing notional), sometimes a truncated gzip, sometimes an extra empty file. The
property: the run either publishes exactly the day's valid trades, or fails with a message that
names the file (and, for bad lines, only lines that are bad), and nothing else in the warehouse
changes. ``FUZZ_EXAMPLES`` cases run by default, ``FUZZ_EXAMPLES_SLOW`` under the slow marker.
"""

import gzip
import re
import shutil
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alevor_assets.defs.market_data.assets import raw_trades
from alevor_assets.defs.resources import AlevorStorage, FilesSource
from tests.conftest import small_settings
from tests.helpers import snapshot

FUZZ_EXAMPLES, FUZZ_EXAMPLES_SLOW = 12, 200
DAY = date(2024, 3, 2)
DAY0 = datetime(2024, 3, 2, tzinfo=timezone.utc)
HEADER = "token,ts,price,amount,side"

numbers = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
trade = st.tuples(
    st.sampled_from(["A", "BB", "c_1"]),
    st.integers(min_value=0, max_value=86_400 * 1_000_000 - 1),
    numbers, numbers, st.sampled_from(["buy", "sell"]),
)
BAD_VALUES = {
    "price": ["abc", "", "-1", "0", "nan", "inf", "1e400"],
    "amount": ["x1", "", "-0.5", "0", "NaN"],
    "side": ["", "hold", "b", "BUYY"],
    "ts": ["", "yesterday", "2024-03-02T10:00:00", "2024-03-02T25:00:00Z"],
    "token": [""],
}
corruption = st.one_of(
    st.tuples(st.sampled_from(sorted(BAD_VALUES)), st.integers(0, 6)),
    st.tuples(st.sampled_from(["drop_field", "extra_field", "overflow", "garbage"]), st.integers(0, 6)),
)


def _iso(us: int, day_offset: int = 0) -> str:
    return (DAY0 + timedelta(days=day_offset, microseconds=us)).isoformat().replace("+00:00", "Z")


def _line(t) -> str:
    token, us, price, amount, side = t
    return f"{token},{_iso(us)},{price!r},{amount!r},{side}"


def _corrupt(t, kind: str, pick: int) -> bytes:
    token, us, price, amount, side = t
    fields = {"token": token, "ts": _iso(us), "price": repr(price), "amount": repr(amount), "side": side}
    if kind in BAD_VALUES:
        fields[kind] = BAD_VALUES[kind][pick % len(BAD_VALUES[kind])]
    elif kind == "overflow":
        fields["price"], fields["amount"] = "1e300", "1e300"
    elif kind == "garbage":
        return bytes([0xFF, 0xFE, 0x00, 0x9C]) * (8 + pick) + b",1,2"
    text = ",".join(fields[c] for c in ("token", "ts", "price", "amount", "side"))
    if kind == "drop_field":
        text = text.rsplit(",", 1)[0]
    elif kind == "extra_field":
        text += ",extra"
    return text.encode()


@st.composite
def cases(draw):
    good = draw(st.lists(trade, min_size=0, max_size=30))
    bad = draw(st.lists(st.tuples(trade, corruption), max_size=4))
    later = draw(st.lists(trade, max_size=5))  # valid trades of the next day: never part of DAY
    order = draw(st.permutations(range(len(good) + len(bad) + len(later))))
    return {
        "good": good, "bad": bad, "later": later, "order": order,
        "gzip": draw(st.booleans()), "truncate": draw(st.floats(0.05, 0.95)) if draw(st.integers(0, 7)) == 0 else None,
        "empty_file": draw(st.integers(0, 5)) == 0,
    }


def _write(case, folder: Path) -> tuple[Path, set[int]]:
    rows: list[tuple[bytes, bool]] = (
        [(_line(t).encode(), False) for t in case["good"]]
        + [(_corrupt(t, kind, pick), True) for t, (kind, pick) in case["bad"]]
        + [(_line(t).replace("2024-03-02", "2024-03-03").encode(), False) for t in case["later"]]
    )
    lines = [rows[i] for i in case["order"]]
    data = b"\n".join([HEADER.encode()] + [text for text, _ in lines]) + b"\n"
    bad_lines = {n + 2 for n, (_, is_bad) in enumerate(lines) if is_bad}
    if case["gzip"] or case["truncate"] is not None:
        path = folder / "trades.csv.gz"
        data = gzip.compress(data, mtime=0)
        if case["truncate"] is not None:
            data = data[: max(1, int(len(data) * case["truncate"]))]
    else:
        path = folder / "trades.csv"
    path.write_bytes(data)
    if case["empty_file"]:
        (folder / "empty.csv").write_bytes(b"")
    return path, bad_lines


def _expected(case) -> pl.DataFrame:
    return pl.DataFrame(
        [(t, DAY0 + timedelta(microseconds=us), p, a, s) for t, us, p, a, s in case["good"]],
        schema={"token": pl.Utf8, "ts": pl.Datetime("us", "UTC"), "price": pl.Float64, "amount": pl.Float64, "side": pl.Utf8},
        orient="row",
    ).sort("token", "ts", "price", "amount", "side")


def _check(case, instance) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        folder = tmp / "files"
        folder.mkdir()
        storage = AlevorStorage(home=str(tmp / "alevor"))
        # An earlier good partition that must stay byte-identical.
        earlier = storage.warehouse.write_partition("raw_trades", DAY - timedelta(days=1), pl.DataFrame(
            {"token": ["A"], "trade_id": [1], "ts": [DAY0 - timedelta(hours=1)], "price": [1.0], "amount": [1.0], "side": ["buy"]}))
        before = snapshot(storage.warehouse.root)
        path, bad_lines = _write(case, folder)
        result = dg.materialize(
            [raw_trades], instance=instance, raise_on_error=False, partition_key=DAY.isoformat(),
            resources={"storage": storage, "settings": small_settings(), "source": FilesSource(pattern=str(folder / "*"))},
        )
        header_only = not (case["good"] or case["bad"] or case["later"])
        empty_inputs = [p for p, empty in ((folder / "empty.csv", case["empty_file"]), (path, header_only)) if empty]
        expect_failure = bool(bad_lines) or case["truncate"] is not None or (empty_inputs and not case["good"])
        event("fails" if expect_failure else "publishes")
        # Which file and lines the message must name: a truncated stream fails before any line is
        # converted; bad lines are reported by the contract check; an empty file only matters
        # for a day without any row.
        if not expect_failure:
            assert result.success, _failure(result)
            got = storage.warehouse.read_partition("raw_trades", DAY)
            assert got.select("token", "ts", "price", "amount", "side").sort("token", "ts", "price", "amount", "side").equals(_expected(case))
            assert snapshot(storage.warehouse.root) == {**before, str(storage.warehouse.partition_path("raw_trades", DAY).relative_to(storage.warehouse.root)): storage.warehouse.partition_path("raw_trades", DAY).read_bytes()}
        else:
            assert not result.success
            text = _failure(result)
            if case["truncate"] is not None:
                assert str(path) in text and "truncated" in text and "line" in text
            elif bad_lines:
                cited = {int(n) for n in re.findall(rf"{re.escape(str(path))}:(\d+)", text)}
                assert cited and cited <= bad_lines, (cited, bad_lines, text[:2000])
            else:
                assert str(empty_inputs[0]) in text and "empty_days" in text
            assert snapshot(storage.warehouse.root) == before
        assert earlier.path.read_bytes() == before[str(earlier.path.relative_to(storage.warehouse.root))]
        assert not [p for p in (storage.root / "staging").rglob("*.parquet") if ".retired" not in p.parts]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _failure(result) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE")


@pytest.fixture(scope="module")
def fuzz_instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases())
def test_fuzzed_trade_files_publish_exactly_the_valid_trades_or_fail_naming_file_and_line(case, fuzz_instance):
    _check(case, fuzz_instance)


@pytest.mark.slow
@settings(max_examples=FUZZ_EXAMPLES_SLOW, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases())
def test_many_fuzzed_trade_files(case, fuzz_instance):
    _check(case, fuzz_instance)
