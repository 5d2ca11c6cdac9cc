import pytest

from cryptocast.runconfig import ConfigError, apply_overrides, load_settings, read_run_config
from tests.conftest import ROOT, raw_config


@pytest.mark.parametrize("gran", ["hour", "day"])
def test_shipped_configs_validate(gran):
    cfg = apply_overrides(raw_config(gran))
    assert cfg.granularity == gran
    assert cfg.pairs == ["BTC/USDT", "ETH/USDT"]
    assert cfg.evaluation.baseline in cfg.candidates
    assert (
        read_run_config(ROOT / "configs" / f"{gran}.yaml")["steps"]["deploy"]["enable_cache"]
        is False
    )


def test_hour_and_day_differ_only_in_values():
    hour, day = raw_config("hour"), raw_config("day")

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, f"{prefix}{k}.")
        return out

    assert keys(hour) == keys(day)


def test_overrides_and_binance_implies_strict():
    cfg = apply_overrides(raw_config("hour"), source="binance", pairs=["SOL/USDT"])
    assert cfg.data.source == "binance"
    assert cfg.data.strict is True
    assert cfg.pairs == ["SOL/USDT"]
    cfg = apply_overrides(raw_config("hour"), source="files", data_dir="/tmp/x")
    assert str(cfg.data.data_dir) == "/tmp/x"
    assert cfg.data.strict is False


@pytest.mark.parametrize("pairs", [["btc/usdt"], ["BTCUSDT"], ["BTC/USDT", "BTC/USDT"]])
def test_bad_pairs_rejected(pairs):
    with pytest.raises(ConfigError, match="pairs"):
        apply_overrides(raw_config("hour"), pairs=pairs)


def test_files_source_needs_a_directory():
    with pytest.raises(ConfigError, match="data_dir"):
        apply_overrides(raw_config("hour"), source="files")


def test_unknown_keys_are_errors():
    raw = raw_config("hour")
    raw["data"]["sourec"] = "sample"
    with pytest.raises(ConfigError, match="sourec"):
        apply_overrides(raw)


def test_a_config_mistake_is_one_line_naming_the_field(tmp_path):
    with pytest.raises(ConfigError) as err:
        apply_overrides(raw_config("hour"), source="files")
    assert str(err.value) == "source 'files' needs data.data_dir (DATA_DIR=...)"
    with pytest.raises(ConfigError) as err:
        apply_overrides(raw_config("hour"), pairs=["BTCUSDT"])
    assert str(err.value).startswith("pairs: pairs must look like 'BTC/USDT'")
    assert "\n" not in str(err.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML"):
        load_settings(bad)
