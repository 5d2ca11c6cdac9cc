from pathlib import Path

import pandas as pd
import pytest

from cryptocast.data.filereader import FileSourceError
from cryptocast.data.files import read_directory
from cryptocast.data.pairnames import pair_from_name
from tests.conftest import make_ohlcv

CDD = """https://www.CryptoDataDownload.com
unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount
1596369600000,2020-08-02 12:00:00,BTC/USDT,11105.54,11120,11100,11110,10.5,116655,55
1596366000000,2020-08-02 11:00:00,BTC/USDT,11100.00,11110,11090,11105.54,12.0,133212,60
1596369600.0,2020-08-02 12-PM,BTC/USDT,11105.00,11120,11100,11110,10.5,116655,NULL
1596362400.0,2020-08-02 10-AM,BTC/USDT,11090.00,11105,11085,11100,9.0,99900,NULL
"""


def test_cryptodatadownload_format(tmp_path: Path):
    (tmp_path / "Binance_BTCUSDT_1h.csv").write_text(CDD)
    scan = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")
    df = scan.frame
    # newest-first rows sorted; seconds and milliseconds both understood
    assert list(df["timestamp"].dt.hour) == [10, 11, 12]
    assert df["timestamp"].is_monotonic_increasing
    # the legacy (seconds) row for 12:00 is superseded by the API (milliseconds) row
    assert df.loc[df["timestamp"].dt.hour == 12, "open"].item() == 11105.54
    assert scan.superseded["Binance_BTCUSDT_1h.csv"]["rows"] == 1
    assert df["volume"].tolist() == [9.0, 12.0, 10.5]  # base-asset volume column


def test_canonical_csv_with_explicit_mapping(tmp_path: Path):
    df = make_ohlcv(periods=10).drop(columns="pair")
    df.to_csv(tmp_path / "warehouse_export.csv", index=False)
    scan = read_directory(
        tmp_path, pairs=["ETH/USDT"], freq="1h", mapping={"warehouse_export.csv": "ETH/USDT"}
    )
    assert set(scan.frame["pair"]) == {"ETH/USDT"}
    assert len(scan.frame) == 10


def test_parquet_with_pair_column(tmp_path: Path):
    make_ohlcv("ETH/USDT", periods=12).to_parquet(tmp_path / "eth.parquet")
    scan = read_directory(tmp_path, pairs=["ETH/USDT"], freq="1h")
    assert len(scan.frame) == 12


@pytest.mark.parametrize(
    ("name", "pair"),
    [
        ("Binance_BTCUSDT_1h.csv", "BTC/USDT"),  # exchange, symbol, interval
        ("BTC-USD.csv", "BTC/USD"),  # finance sites' daily downloads
        ("ETHUSDT.parquet", "ETH/USDT"),
        ("btc_usdt_hourly.csv", "BTC/USDT"),
        ("Coinbase_ETHUSD_d.csv", "ETH/USD"),
        ("ETH-EUR daily.csv", "ETH/EUR"),
        ("bitstamp_btcusd_2021-06-10.csv", "BTC/USD"),
        ("data.csv", None),
        ("2021-06_prices.csv", None),
        ("BTC-USD_ETH-USD.csv", None),  # two pairs: not a guess to make
        ("ETHBTC.csv", None),  # BTC is not a configured quote currency
    ],
)
def test_the_pair_from_the_file_name(name, pair):
    assert pair_from_name(name, ["USDT", "USDC", "BUSD", "USD", "EUR"]) == pair


def test_a_file_without_a_pair_column_is_read_by_its_name_and_says_so(tmp_path, caplog):
    make_ohlcv(periods=5).drop(columns="pair").to_csv(tmp_path / "BTCUSDT.csv", index=False)
    caplog.set_level("INFO", "cryptocast.data.files")
    scan = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")
    assert scan.used == {"BTC/USDT": ["BTCUSDT.csv"]}
    assert "BTCUSDT.csv -> BTC/USDT (from its file name)" in caplog.text


def test_one_unnamed_file_and_one_pair_asked_for(tmp_path, caplog):
    make_ohlcv(periods=5).drop(columns="pair").to_csv(tmp_path / "export.csv", index=False)
    caplog.set_level("INFO", "cryptocast.data.files")
    assert read_directory(tmp_path, pairs=["SOL/USDT"], freq="1h").used == {
        "SOL/USDT": ["export.csv"]
    }
    assert "export.csv -> SOL/USDT (from PAIRS" in caplog.text
    # two pairs asked for: no guess, and the suggestion is a mapping that would work
    with pytest.raises(FileSourceError, match=r"'export.csv': 'SOL/USDT'") as err:
        read_directory(tmp_path, pairs=["SOL/USDT", "ETH/USDT"], freq="1h")
    assert "SOL-USDT.csv" in str(err.value)


def test_a_finance_site_daily_download(tmp_path, caplog):
    """Yahoo-style ``BTC-USD.csv``: Date, Open, High, Low, Close, Adj Close, Volume."""
    days = make_ohlcv(periods=6, freq="1D")
    pd.DataFrame(
        {
            "Date": days["timestamp"].dt.strftime("%Y-%m-%d"),
            "Open": days["open"],
            "High": days["high"],
            "Low": days["low"],
            "Close": days["close"],
            "Adj Close": days["close"] * 0 + 1.0,  # must not be read as the close
            "Volume": days["volume"],
        }
    ).to_csv(tmp_path / "BTC-USD.csv", index=False)
    caplog.set_level("INFO", "cryptocast.data.files")
    out = read_directory(tmp_path, pairs=["BTC/USD"], freq="1D").frame
    assert out["close"].tolist() == days["close"].tolist()
    assert "close prices from column 'Close' (not 'Adj Close')" in caplog.text


def test_a_file_cut_in_the_middle_of_a_row_is_refused_naming_the_line(tmp_path):
    cut = CDD.rstrip("\n")
    (tmp_path / "Binance_BTCUSDT_1h.csv").write_text(cut[: cut.rindex(",11100,") + 4])
    with pytest.raises(FileSourceError, match=r"ends in the middle of line 6 \(7 of 10 fields"):
        read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")
    # a short row elsewhere is named too, never read as a row with empty cells
    lines = CDD.splitlines()
    lines[3] = ",".join(lines[3].split(",")[:7])
    (tmp_path / "Binance_BTCUSDT_1h.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(FileSourceError, match=r"line 4: 7 fields where the header \(line 2\)"):
        read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")


def test_the_overlap_rule_never_repairs_beyond_its_tolerance(tmp_path):
    """A legacy row cut to ``...,11`` differed by 99% and was replaced without a word."""
    (tmp_path / "Binance_BTCUSDT_1h.csv").write_text(CDD.replace("11105.00,", "11.00,"))
    with pytest.raises(FileSourceError, match=r"line 5: open differs by 99\.90%.*up to 1%"):
        read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")


@pytest.mark.parametrize("factor", [1_000, 1_000_000], ids=["us", "ns"])
def test_the_overlap_rule_with_finer_epochs(tmp_path, factor):
    """API rows re-exported in micro- or nanoseconds beside legacy milliseconds (or
    seconds) rows: the finest unit is the newer collection (it was: conflicting
    duplicates)."""
    lines = CDD.splitlines()
    for i in (2, 3):
        unix, rest = lines[i].split(",", 1)
        lines[i] = f"{int(unix) * factor},{rest}"
    for i in (4, 5):
        unix, rest = lines[i].split(",", 1)
        lines[i] = f"{int(float(unix) * 1000)},{rest}"  # legacy rows in milliseconds
    (tmp_path / "Binance_BTCUSDT_1h.csv").write_text("\n".join(lines) + "\n")
    scan = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")
    assert scan.superseded["Binance_BTCUSDT_1h.csv"]["rows"] == 1
    assert scan.frame.loc[scan.frame["timestamp"].dt.hour == 12, "open"].item() == 11105.54


def test_other_granularity_and_pairs_are_skipped_with_reasons(tmp_path: Path):
    make_ohlcv("BTC/USDT", periods=10, freq="1D").to_csv(tmp_path / "btc_d.csv", index=False)
    make_ohlcv("BTC/USDT", periods=10).to_csv(tmp_path / "btc_h.csv", index=False)
    make_ohlcv("BNB/USDT", periods=10).to_csv(tmp_path / "bnb_h.csv", index=False)
    scan = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")
    assert scan.used == {"BTC/USDT": ["btc_h.csv"]}
    assert scan.skipped["btc_d.csv"] == "candles every 1 day, run needs 1 hour"
    assert "not requested" in scan.skipped["bnb_h.csv"]


def test_missing_pair_is_an_error_naming_what_was_found(tmp_path: Path):
    make_ohlcv("BTC/USDT", periods=10).to_csv(tmp_path / "btc.csv", index=False)
    with pytest.raises(FileSourceError, match=r"ETH/USDT"):
        read_directory(tmp_path, pairs=["BTC/USDT", "ETH/USDT"], freq="1h")


def test_missing_directory(tmp_path: Path):
    with pytest.raises(FileSourceError, match="does not exist"):
        read_directory(tmp_path / "nope", pairs=["BTC/USDT"], freq="1h")


def test_epoch_timestamps_in_canonical_files(tmp_path: Path):
    df = make_ohlcv(periods=4)
    df["timestamp"] = (df["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms")
    df.to_csv(tmp_path / "btc.csv", index=False)
    out = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h").frame
    assert out["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


# -- what people actually have, and what goes wrong with it (issue 12) ----------------------


def _rows(n=6, start="2024-01-01", freq="h"):
    """n canonical candles (timestamp as pandas Timestamps)."""
    return make_ohlcv(periods=n, start=start, freq=freq)


def _read(tmp_path, pairs=("BTC/USDT",), **kw):
    return read_directory(tmp_path, pairs=list(pairs), freq=kw.pop("freq", "1h"), **kw)


def test_an_empty_file_is_named_when_its_pair_is_missing(tmp_path: Path):
    (tmp_path / "btc.csv").write_text("")
    with pytest.raises(FileSourceError, match=r"btc.csv \(empty file\)"):
        _read(tmp_path)


def test_a_header_only_file_says_so(tmp_path: Path):
    (tmp_path / "btc.csv").write_text("timestamp,open,high,low,close,volume,pair\n")
    with pytest.raises(FileSourceError, match=r"a header \(line 1\) and no rows"):
        _read(tmp_path)


def test_a_non_utf8_byte_is_named_by_line(tmp_path: Path):
    good = _rows().to_csv(index=False).encode()
    lines = good.splitlines(keepends=True)
    lines[3] = lines[3].replace(b"BTC", b"BT\xff")
    (tmp_path / "btc.csv").write_bytes(b"".join(lines))
    with pytest.raises(FileSourceError, match=r"line 4: byte 0xff is not UTF-8"):
        _read(tmp_path)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_epoch_times_in_any_unit(tmp_path: Path, unit):
    df = _rows()
    since = df["timestamp"] - pd.Timestamp(0, tz="UTC")
    df["timestamp"] = since // pd.Timedelta(1, unit=unit)
    df.to_csv(tmp_path / "btc.csv", index=False)
    out = _read(tmp_path).frame
    assert out["timestamp"].tolist() == _rows()["timestamp"].tolist()


def test_text_in_a_price_cell_of_the_merge_stretch_names_line_and_value(tmp_path: Path):
    bad = CDD.replace("11090.00,11105", "abc,11105")  # the last row, in the merge stretch
    (tmp_path / "b.csv").write_text(bad)
    with pytest.raises(FileSourceError, match=r"b.csv, line 6: open is not a number: 'abc'"):
        _read(tmp_path)


def test_an_unparseable_time_names_its_line(tmp_path: Path):
    (tmp_path / "b.csv").write_text(CDD.replace("1596366000000", "15963x6000000"))
    with pytest.raises(FileSourceError, match=r"b.csv, line 4: time 'unix' is not"):
        _read(tmp_path)


def test_a_corrupt_parquet_of_another_pair_is_skipped(tmp_path: Path):
    _rows().to_csv(tmp_path / "btc.csv", index=False)
    (tmp_path / "bnb.parquet").write_bytes(b"PAR1 this is not parquet")
    scan = _read(tmp_path)
    assert scan.used == {"BTC/USDT": ["btc.csv"]}
    assert "not a readable Parquet file" in scan.skipped["bnb.parquet"]


def test_link_loops_and_plain_files_as_data_dir(tmp_path: Path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(FileSourceError, match="symbolic-link loop"):
        _read(loop)
    (tmp_path / "btc.csv").write_text(_rows().to_csv(index=False))
    with pytest.raises(FileSourceError, match="is a file, not a folder"):
        _read(tmp_path / "btc.csv")
    inner = tmp_path / "dir"
    inner.mkdir()
    (inner / "btc.csv").write_text(_rows().to_csv(index=False))
    (inner / "x.csv").symlink_to(inner / "x.csv")
    scan = _read(inner)
    assert "cannot be read" in scan.skipped["x.csv"]


def test_a_semicolon_delimited_file(tmp_path: Path):
    (tmp_path / "btc.csv").write_text(_rows().to_csv(index=False, sep=";"))
    assert len(_read(tmp_path).frame) == 6


def test_a_mislabelled_file_is_blamed_on_its_label(tmp_path: Path):
    (tmp_path / "Binance_BTCUSDT_1h.csv").write_text(CDD.replace("BTC/USDT", "ETH/USDT"))
    with pytest.raises(FileSourceError, match=r"Volume BTC.*suggest it holds another pair"):
        _read(tmp_path, pairs=["ETH/USDT"])
    with pytest.raises(FileSourceError, match=r"maps it to BTC/USDT but its 'symbol' column says"):
        _read(tmp_path, mapping={"Binance_BTCUSDT_1h.csv": "BTC/USDT"})


def test_a_byte_order_mark_before_the_url_line(tmp_path: Path):
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbf" + CDD.encode())
    assert len(_read(tmp_path).frame) == 3


# other layouts people have: each on a small file written here
BITSTAMP = """https://www.CryptoDataDownload.com
Data from Bitstamp, timestamps in UTC
unix,date,symbol,open,high,low,close,Volume BTC,Volume USD
1596369600,2020-08-02 12:00:00,BTC/USD,11105.54,11120,11100,11110,10.5,116655
1596366000,2020-08-02 11:00:00,BTC/USD,11100.00,11110,11090,11105.54,12.0,133212
1596362400,2020-08-02 10:00:00,BTC/USD,11090.00,11105,11085,11100,9.0,99900
"""
GEMINI = """Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume
1596369600000,2020-08-02 12:00:00,BTCUSD,11105.54,11120,11100,11110,10.5
1596366000000,2020-08-02 11:00:00,BTCUSD,11100.00,11110,11090,11105.54,12.0
1596362400000,2020-08-02 10:00:00,BTCUSD,11090.00,11105,11085,11100,9.0
"""


def test_cdd_exports_of_other_exchanges(tmp_path: Path):
    (tmp_path / "Bitstamp_BTCUSD_1h.csv").write_text(BITSTAMP)
    (tmp_path / "Gemini_BTCUSD_1h.csv").write_text(GEMINI.replace("BTCUSD,", "ETHUSD,"))
    scan = _read(tmp_path, pairs=["BTC/USD", "ETH/USD"])
    assert scan.used == {"BTC/USD": ["Bitstamp_BTCUSD_1h.csv"], "ETH/USD": ["Gemini_BTCUSD_1h.csv"]}
    btc = scan.frame[scan.frame["pair"] == "BTC/USD"]
    assert btc["volume"].tolist() == [9.0, 12.0, 10.5]  # base volume, oldest first


def test_a_slashless_symbol_needs_a_known_quote_currency(tmp_path: Path):
    (tmp_path / "g.csv").write_text(GEMINI.replace("BTCUSD,", "BTCXYZ,"))
    with pytest.raises(FileSourceError, match=r"'BTCXYZ' names no quote currency.*data.files"):
        _read(tmp_path, pairs=["BTC/XYZ"])
    assert len(_read(tmp_path, pairs=["BTC/XYZ"], quotes=["XYZ"]).frame) == 3


def test_ccxt_and_pandas_exports(tmp_path: Path):
    df = _rows()
    ms = (df["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms")
    ccxt = df.drop(columns="pair").assign(timestamp=ms)
    ccxt.to_csv(tmp_path / "ccxt.csv", index=False)  # epoch ms, no pair column
    frame = df.drop(columns="pair").rename(columns={"timestamp": "Datetime", "close": "Close"})
    frame.assign(Datetime=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(
        tmp_path / "pandas.csv"  # the index becomes an unnamed first column
    )
    scan = _read(
        tmp_path,
        pairs=["BTC/USDT", "ETH/USDT"],
        mapping={"ccxt.csv": "BTC/USDT", "pandas.csv": "ETH/USDT"},
    )
    assert scan.frame.groupby("pair").size().to_dict() == {"BTC/USDT": 6, "ETH/USDT": 6}
    assert scan.frame["timestamp"].min() == pd.Timestamp("2024-01-01", tz="UTC")


def test_parquet_with_a_datetime_index(tmp_path: Path):
    _rows().set_index("timestamp").to_parquet(tmp_path / "btc.parquet")
    out = _read(tmp_path).frame
    assert out["timestamp"].tolist() == _rows()["timestamp"].tolist()
