"""The jobs: those running (pushed as they change) and the whole history."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitInvalidLayoutContextError

from ui.components import api, call, money
from ui.views.predict import show_result

PUSH_WAIT_SECONDS = 3.0  # how long one wait for a pushed update may hold the page


def jobs_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    """Jobs as a table: prices and ranges in dollars, empty where there is none."""
    return pd.DataFrame([{
        "time": pd.to_datetime(j["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        "model": f"{j['model_name']} v{j['model_version']}", "price": j["price"],
        "status": j["status"], "result": money(j.get("result")),
        "range": (f"{money(j['interval']['low'])} to {money(j['interval']['high'])}"
                  if j.get("interval") else ""),
        "error": j.get("error") or "", "job": j["job_id"]} for j in jobs])


def running() -> None:
    """Queued and started jobs; updated the moment one changes (pushed, not polled)."""
    st.title("Running jobs")

    @st.fragment(run_every=PUSH_WAIT_SECONDS)  # the fallback; updates redraw at once
    def live() -> None:
        jobs = call(api().running)
        recent = call(api().history, limit=5) if jobs is not None else None
        if jobs is None or recent is None:
            return
        if jobs:
            st.dataframe(jobs_frame(jobs).drop(columns=["result", "error"]), hide_index=True)
        else:
            st.info("No job is running.")
        done = [j for j in recent if j["status"] in ("finished", "failed")]
        if done:
            st.subheader("Just finished")
            st.caption(f"{len(done)} of your latest jobs ended")
            st.dataframe(jobs_frame(done), hide_index=True)
        # Sleep on the job-update stream (server-sent events) until something changes, then
        # draw again at once; the wait is short so that navigating away is never held up long.
        seen = st.session_state.get("last_update")
        st.session_state.last_update = api().next_update(seen, PUSH_WAIT_SECONDS)
        try:
            st.rerun(scope="fragment")
        except StreamlitInvalidLayoutContextError:
            pass  # the page's first, full run: run_every starts the fragment's own reruns

    live()


def history() -> None:
    """Every job, newest first, filterable; a job's features on demand."""
    st.title("History")
    jobs = call(api().history)
    if jobs is None:
        return
    if not jobs:
        st.info("No predictions yet.")
        return
    frame = jobs_frame(jobs)
    counts = frame["status"].value_counts()
    latest = next((j for j in jobs if j["status"] == "finished"), None)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    st.caption(f"{len(jobs)} jobs: {summary}." + (
        f" Latest price: ${latest['result']:,.2f} ({latest['model_name']})." if latest else ""))
    left, right = st.columns(2)
    models = left.multiselect("Model", sorted(frame["model"].unique()))
    statuses = right.multiselect("Status", sorted(frame["status"].unique()))
    mask = pd.Series(True, index=frame.index)
    if models:
        mask &= frame["model"].isin(models)
    if statuses:
        mask &= frame["status"].isin(statuses)
    shown = frame[mask]
    st.dataframe(shown, hide_index=True)
    pick = st.selectbox("Show the features of job", shown["job"].tolist())
    if pick:
        job = next(j for j in jobs if j["job_id"] == pick)
        show_result(job)
        _receipt_download(pick)
        st.subheader("Features")
        # a static table: it renders in any browser without the grid's canvas
        st.table(pd.DataFrame(sorted((job.get("features") or {}).items()),
                              columns=["feature", "value"]).astype(str).set_index("feature"))


def _receipt_download(job_id: str) -> None:
    content = call(api().receipt, job_id)
    if content is None:
        return
    st.download_button("Download the receipt (JSON)", content, file_name=f"receipt-{job_id}.json",
                       mime="application/json", help="The model version and input it paid for, "
                       "and the events that moved its credits; an operator checks it with "
                       "`carprice audit receipt`.")
