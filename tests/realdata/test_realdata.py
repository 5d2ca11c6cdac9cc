"""The real CryptoDataDownload files pass validation after the documented repairs."""

import pytest

from cryptocast.data.sources import load_ohlcv
from cryptocast.data.validation import validate
from cryptocast.runconfig import apply_overrides
from tests.conftest import raw_config

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("gran", ["hour", "day"])
def test_real_files_pass_after_repair(gran, shared_data):
    cfg = apply_overrides(
        raw_config(gran),
        source="files",
        data_dir=str(shared_data),
        pairs=["BTC/USDT", "ETH/USDT", "BNB/USDT"],
    )
    frame, info = load_ohlcv(cfg)
    assert info.used == "files"
    assert not info.live
    clean, report = validate(frame, cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    assert report.ok
    # the two collection methods' overlap is resolved on purpose, and reported
    superseded = info.details["cdd_overlap_superseded"]
    if gran == "hour":
        assert superseded["Binance_BTCUSDT_1h.csv"]["rows"] == 2649
        assert superseded["Binance_ETHUSDT_1h.csv"]["rows"] == 2649
        gaps = {r.pair: r.count for r in report.repairs if r.rule == "short_gaps"}
        assert gaps == {"BTC/USDT": 12, "ETH/USDT": 12, "BNB/USDT": 12}
        assert clean.groupby("pair").size().to_dict()["BTC/USDT"] == cfg.data.history
    else:
        assert superseded["Binance_BTCUSDT_d.csv"]["rows"] == 1


def test_the_whole_hourly_file_is_rejected_for_its_old_dirt(shared_data):
    """Over the full history the 2017 four-candle gap and the first bad print remain."""
    raw = raw_config("hour")
    raw["data"]["history"] = 40_000
    cfg = apply_overrides(raw, source="files", data_dir=str(shared_data), pairs=["BTC/USDT"])
    from cryptocast.data.validation import DataValidationError

    with pytest.raises(DataValidationError) as err:
        validate(load_ohlcv(cfg)[0], cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    rules = {v.rule for v in err.value.report.violations}
    assert {"long_gaps", "implausible_jump"} <= rules
