"""The forecast app: ``make app GRAN=hour`` (Streamlit, on 127.0.0.1).

Per pair, the recent closes the champion knows with its forecast and its calibrated 80%
and 90% quantile bands; the champion's version, when and on what data it was trained, its
backtest against naive, its live accuracy from monitoring, and every version with its
latest promotion and reason. It reads only through the front door
(``cryptocast.serving.client``) and the forecasts database (``cryptocast.delivery.store``).

    streamlit run app/forecast_app.py -- --gran hour
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import streamlit as st

from cryptocast.contracts import BASELINE_LABEL
from cryptocast.delivery import store
from cryptocast.paths import granularity_config
from cryptocast.runconfig import load_settings
from cryptocast.serving.client import ClientError, ForecastClient


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gran", default="hour", choices=["hour", "day"])
    ap.add_argument("--url", default=None, help="Front door (default: the config's address).")
    return ap.parse_args()


def chart(pair: str, history: list[dict], forecasts: pd.DataFrame, version: str):
    hist = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    if len(hist):
        ax.plot(pd.to_datetime(hist["timestamp"]), hist["close"], color="black", lw=1.2,
                label="close")  # fmt: skip
    f = forecasts[forecasts["pair"] == pair]
    t = pd.to_datetime(f["target_time"])
    q = pd.DataFrame(list(f["quantiles"]), index=f.index)
    if {"0.05", "0.95"} <= set(q.columns):  # calibrated quantiles (older models: none)
        ax.fill_between(t, q["0.05"], q["0.95"], color="tab:blue", alpha=0.1,
                        label="90% (0.05-0.95)")  # fmt: skip
    ax.fill_between(t, f["lower"], f["upper"], color="tab:blue", alpha=0.25,
                    label="80% interval")  # fmt: skip
    ax.plot(t, f["forecast"], color="tab:blue", lw=1.6, label=f"forecast (v{version})")
    ax.set_title(f"{pair}: recent closes and the champion's forecast")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def main() -> None:
    args = _args()
    cfg = load_settings(granularity_config(args.gran))
    url = args.url or f"http://{cfg.service.host}:{cfg.service.port}"
    st.set_page_config(page_title=f"cryptocast {args.gran}", layout="wide")
    st.title(f"cryptocast: {args.gran} forecasts")
    client = ForecastClient(url)
    try:
        info = client.version()
        card = client.model()
    except ClientError as exc:
        st.error(f"The front door at {url} does not answer yet: {exc}. "
                 f"Start it with `make front GRAN={args.gran}`.")  # fmt: skip
        return
    trained = info.trained
    cols = st.columns(4)
    cols[0].metric("Champion", f"v{info.model_version}")
    cols[1].metric("Serving since", (info.serving_since or "-")[:16].replace("T", " "))
    cols[2].metric("Trained on", trained.get("data_source", "?"))
    cols[3].metric("Promoted", (trained.get("promoted_at") or "-")[:16].replace("T", " "))
    st.caption(f"{info.model_name} at {url} · run {info.run_id} · "
               f"git {trained.get('git_commit', '?')[:12]}")  # fmt: skip
    if card.label == BASELINE_LABEL:
        st.info(f"v{info.model_version} is the {BASELINE_LABEL}: the naive forecast with "
                "calibrated intervals. No learned model has beaten it by a margin that is "
                "not noise yet.")  # fmt: skip
    elif card.label:
        st.caption(f"v{info.model_version} serves {card.label}")

    answer = client.forecast([{"pair": p} for p in info.pairs])
    forecasts = pd.DataFrame([f.model_dump() for f in answer.forecasts])
    for pair in info.pairs:
        st.subheader(pair)
        st.pyplot(chart(pair, card.history.get(pair, []), forecasts, answer.model_version))

    left, right = st.columns(2)
    with left:
        st.subheader("Backtest against naive")
        rows = [
            {"pair": p, **b, "ratio to naive": (b["mase"] or 0) / (b["naive_mase"] or 1)}
            for p, b in card.backtest.items()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    with right:
        st.subheader("Live accuracy (last monitoring run)")
        last = card.monitoring
        if last:
            decision = (last.get("decision") or last.get("status") or "?").upper()
            st.caption(f"Last monitoring run: {last.get('at', '?').replace('T', ' ')} "
                       f"({decision})")  # fmt: skip
        if card.live:
            live = [{"pair": p, **v} for p, v in card.live.items()]
            st.dataframe(pd.DataFrame(live), hide_index=True)
        elif last:
            st.info(f"Nothing was compared: {last.get('reasons') or 'the run logged no reason'}")
        else:
            st.info(f"No monitoring run yet: `make monitor GRAN={args.gran}`.")
    st.subheader("Promotions")
    st.dataframe(pd.DataFrame(card.promotions), hide_index=True)

    st.subheader("Stored forecasts (forecasts database)")
    engine = store.connect()
    try:
        stored = store.latest_forecasts(engine, args.gran, info.model_name)
    finally:
        engine.dispose()
    st.caption(f"{store.database_url()}: {len(stored)} rows of the latest origin per pair")
    st.dataframe(stored.head(48), hide_index=True)


main()
