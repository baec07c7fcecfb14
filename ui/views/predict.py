"""Pricing one car with one or more models, and showing a job's price."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui import charts
from ui.client import ApiError
from ui.components import api, call, failed, money, notices

RESULT_WAIT_SECONDS = 20.0  # a long-poll: answered the moment the job ends


def _feature_input(name: str, spec: dict[str, Any], brand: str) -> float | str | None:
    if spec["kind"] == "numeric":
        integer = spec["dtype"] == "int"
        cast = int if integer else float
        return st.number_input(
            name, min_value=cast(spec["allowed_min"]), max_value=cast(spec["allowed_max"]),
            value=cast(spec["default"]), step=cast(1) if integer else 0.1,
            help=f"seen in training: {spec['min']} to {spec['max']}")
    if spec["kind"] == "categorical":
        options = spec["categories"]
        return st.selectbox(name, options, index=options.index(spec["default"]))
    models = spec.get("by_brand", {}).get(brand) or [spec.get("default", "")]
    return st.selectbox(name, models)


def predict() -> None:
    """A form with all 25 features, built from the model card; submit to one or more models."""
    st.title("Predict a price")
    notices()
    models = call(api().models)
    if models is None:
        return
    names = [m["model_name"] for m in models]
    prices = {m["model_name"]: m["price"] for m in models}
    st.dataframe(pd.DataFrame([{"model": m["model_name"], "version": m["version"],
                                "price (credits)": m["price"],
                                "CV R²": round(m["metrics"]["r2"]["mean"], 3),
                                "CV RMSE": money(m["metrics"]["rmse"]["mean"])} for m in models]),
                 hide_index=True)
    chosen = st.multiselect("Models", names, default=names[:1],
                            format_func=lambda n: f"{n} ({prices[n]} credits)")
    surcharges = {m["model_name"]: m.get("explain_price") or 0 for m in models}
    explainable = [n for n in chosen if surcharges[n]]
    explain = bool(explainable) and st.checkbox(
        f"Explain the price (+{max(surcharges[n] for n in explainable)} credits per model; "
        "refunded if the explanation fails)", key="explain")
    card = call(api().card, names[0])
    if card is None:
        return
    schema = card["input_schema"]
    brands = schema["brand"]["categories"]
    brand = st.selectbox("brand", brands, index=brands.index(schema["brand"]["default"]))
    with st.form("car"):
        columns = st.columns(3)
        data: dict[str, Any] = {"brand": brand}
        fields = [f for f in schema if f != "brand"]
        for i, field in enumerate(fields):
            with columns[i % 3]:
                data[field] = _feature_input(field, schema[field], brand)
        total = sum(prices[n] + (surcharges[n] if explain else 0) for n in chosen)
        submitted = st.form_submit_button(f"Predict with {len(chosen)} model(s) for {total} credits",
                                          type="primary", disabled=not chosen)
    if submitted:
        _submit(chosen, data, explain, surcharges)
    _results(st.session_state.get("results") or [])


def _submit(chosen: list[str], data: dict[str, Any], explain: bool, surcharges: dict[str, int]) -> None:
    said, submitted_jobs = [], []
    for name in chosen:
        try:
            job = api().predict(name, data, explain=explain and bool(surcharges[name]))
        except ApiError as exc:
            if exc.status != 402:
                failed(exc)
                return
            said.append(("warning", f"{name}: {exc.detail}. Top up in the sidebar."))
            continue
        submitted_jobs.append(job["job_id"])
        said.append(("success", f"{name}: {job['price']} credits charged, {job['balance']} left."))
    st.session_state.notices = said
    st.session_state.results = submitted_jobs
    st.rerun()  # so the balance in the sidebar shows the charge at once


def _results(job_ids: list[str]) -> None:
    """The jobs just submitted, waited for (long-poll), as prices with their ranges."""
    for job_id in job_ids:
        with st.spinner("Pricing..."):
            job = call(api().job, job_id, wait=RESULT_WAIT_SECONDS)
        if job is None:
            return
        show_result(job)


def show_result(job: dict[str, Any]) -> None:
    """One job: its price, its 80 % range on a small chart, and its explanation if bought."""
    name = f"{job['model_name']} v{job['model_version']}"
    if job["status"] == "failed":
        st.error(f"{name}: failed and refunded: {job.get('error') or 'no reason given'}")
        return
    if job["status"] != "finished":
        st.info(f"{name}: still {job['status']}; it shows under Running jobs when it ends.")
        return
    interval = job.get("interval")
    st.markdown(f"#### {name}: {money(job['result'])}", help=f"job {job['job_id']}")
    if interval:
        st.caption(f"{interval['level']:.0%} range: {money(interval['low'])} to "
                   f"{money(interval['high'])}")
        st.altair_chart(charts.range_chart(job["result"], interval))
    explanation = job.get("explanation")
    if explanation:
        st.caption(f"Why: an average car costs {money(explanation['base'])}; each bar is what a "
                   "feature of this car adds or takes away (they add up to the price).")
        st.altair_chart(charts.explanation_chart(explanation))
    elif job.get("explain") and job.get("error"):
        st.warning(job["error"])
