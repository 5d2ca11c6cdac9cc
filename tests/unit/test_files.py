from pathlib import Path

import pandas as pd
import pytest

from cryptocast.data.files import FileSourceError, read_directory
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


def test_pair_is_never_guessed_from_the_file_name(tmp_path: Path):
    make_ohlcv(periods=5).drop(columns="pair").to_csv(tmp_path / "BTCUSDT.csv", index=False)
    with pytest.raises(FileSourceError, match=r"data\.files"):
        read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")


def test_other_granularity_and_pairs_are_skipped_with_reasons(tmp_path: Path):
    make_ohlcv("BTC/USDT", periods=10, freq="1D").to_csv(tmp_path / "btc_d.csv", index=False)
    make_ohlcv("BTC/USDT", periods=10).to_csv(tmp_path / "btc_h.csv", index=False)
    make_ohlcv("BNB/USDT", periods=10).to_csv(tmp_path / "bnb_h.csv", index=False)
    scan = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h")
    assert scan.used == {"BTC/USDT": ["btc_h.csv"]}
    assert "run needs" in scan.skipped["btc_d.csv"]
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
    df["timestamp"] = df["timestamp"].astype("int64") // 10**6  # milliseconds
    df.to_csv(tmp_path / "btc.csv", index=False)
    out = read_directory(tmp_path, pairs=["BTC/USDT"], freq="1h").frame
    assert out["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
