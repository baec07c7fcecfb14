"""Pricing a fleet from a CSV: progress while its rows run, then the table and a download."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from ui.client import ApiError
from ui.components import api, call, failed, notices

FLEET_REFRESH_SECONDS = 1.0


def fleet() -> None:
    """Upload, charge, watch, download."""
    st.title("Price a fleet")
    models = call(api().models)
    if models is None:
        return
    prices = {m["model_name"]: m["price"] for m in models}
    st.caption("Upload a CSV with the dataset's columns (CarName is split into brand and model) "
               "or the 25 features; up to 10,000 cars. Every row is checked first, then "
               "charged together; a row that fails is refunded alone.")
    with st.form("fleet"):
        model = st.selectbox("Model", list(prices), format_func=lambda n: f"{n} ({prices[n]} "
                             "credits per car)")
        upload = st.file_uploader("Cars (CSV)", type=["csv"])
        sent = st.form_submit_button("Price the fleet", type="primary")
    if sent:
        if upload is None:
            st.warning("Choose a CSV first.")
        else:
            try:
                accepted = api().batch_csv(model, upload.name, upload.getvalue())
            except ApiError as exc:
                if exc.status in (402, 413, 422):  # the upload's own problem: say it, stay
                    st.error(exc.detail)
                else:
                    failed(exc)
                return
            st.session_state.fleet_batch = str(accepted["batch_id"])
            st.session_state.notices = [("success", f"{accepted['rows']} cars accepted: "
                                         f"{accepted['total_price']} credits charged, "
                                         f"{accepted['balance']} left.")]
            st.rerun()
    notices()
    batch_id = st.session_state.get("fleet_batch")
    if batch_id:
        _progress(batch_id)


def _progress(batch_id: str) -> None:
    cached = st.session_state.get("fleet_results")
    if cached and cached[0] == batch_id:
        _table(batch_id, cached[1])
        return

    @st.fragment(run_every=FLEET_REFRESH_SECONDS)
    def live() -> None:
        batch = call(api().batch, batch_id)
        if batch is None:
            return
        ended = batch["done"] + batch["failed"]
        st.progress(ended / max(batch["rows"], 1),
                    text=f"{ended} of {batch['rows']} cars priced ({batch['failed']} failed and "
                         "refunded)")
        if batch["status"] != "finished":
            return
        content = call(api().batch_results, batch_id)
        if content is None:
            return
        st.session_state.fleet_results = (batch_id, content)
        st.rerun()  # the whole page: the finished batch is drawn once, without the timer

    live()


def results_table(content: bytes) -> pd.DataFrame:
    """The results CSV as the page shows it: empty cells empty, not 'None' or 'nan'."""
    table = pd.read_csv(io.BytesIO(content), keep_default_na=False, na_values=[""])
    shown = table[["row", "brand", "model", "price", "low", "high", "status", "error"]].copy()
    shown["error"] = shown["error"].fillna("").astype(str)
    return shown


def _table(batch_id: str, content: bytes) -> None:
    table = results_table(content)
    failed_rows = int((table["status"] == "failed").sum())
    st.success(f"{len(table)} cars priced" + (f", {failed_rows} failed and refunded"
                                               if failed_rows else "") + ".")
    dollars = st.column_config.NumberColumn(format="dollar")
    st.dataframe(table, hide_index=True, column_config={
        "price": dollars, "low": st.column_config.NumberColumn("80 % range from", format="dollar"),
        "high": st.column_config.NumberColumn("to", format="dollar")})
    st.download_button("Download the results (CSV)", content, file_name=f"fleet-{batch_id}.csv",
                       mime="text/csv")
