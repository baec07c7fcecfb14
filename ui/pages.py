"""The dashboard's pages. Every API error is shown as a message, never a traceback."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitInvalidLayoutContextError

from ui.client import ApiClient, ApiError


def api() -> ApiClient:
    """The session's API client."""
    return st.session_state.client  # type: ignore[no-any-return]


def _failed(exc: ApiError) -> None:
    """Show an API error; an expired or invalid token signs the user out."""
    if exc.status == 401 and st.session_state.get("user"):
        sign_out("Your session expired; please sign in again.")
        st.rerun()
    st.error(exc.detail)


def sign_out(message: str | None = None) -> None:
    """Forget the token and the user."""
    api().token = None
    st.session_state.pop("user", None)
    if message:
        st.session_state.notice = message


def sidebar() -> None:
    """Who is signed in, the balance (always visible), top-up and sign-out."""
    if not st.session_state.get("user"):
        return
    with st.sidebar:
        st.caption(f"Signed in as **{st.session_state.user['name']}** ({st.session_state.user['email']})")
        try:
            st.metric("Balance", f"{api().balance()} credits")
        except ApiError as exc:
            _failed(exc)
        with st.form("top_up", clear_on_submit=True):
            amount = st.number_input("Top up (credits)", min_value=1, max_value=1_000_000, value=50, step=10)
            if st.form_submit_button("Top up"):
                try:
                    api().deposit(int(amount))
                    st.session_state.notice = f"Added {int(amount)} credits."
                    st.rerun()
                except ApiError as exc:
                    _failed(exc)
        if st.button("Sign out"):
            sign_out("Signed out.")
            st.rerun()


def _notice() -> None:
    if msg := st.session_state.pop("notice", None):
        st.success(msg)
    for kind, text in st.session_state.pop("notices", []):
        (st.success if kind == "success" else st.warning)(text)


def account() -> None:
    """Sign in or create an account."""
    st.title("carprice")
    st.caption("Car price predictions, paid in credits.")
    _notice()
    sign_in_tab, sign_up_tab = st.tabs(["Sign in", "Create account"])
    with sign_in_tab, st.form("sign_in"):
        email = st.text_input("Email")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                body = api().sign_in(email, password)
                st.session_state.user = {"name": body["name"], "email": body["email"]}
                st.rerun()
            except ApiError as exc:
                st.error(exc.detail)
    with sign_up_tab, st.form("sign_up"):
        name = st.text_input("Your name")
        new_email = st.text_input("Your email")
        new_password = st.text_input("Choose a password (at least 8 characters)", type="password")
        if st.form_submit_button("Create account"):
            try:
                api().sign_up(name, new_email, new_password)
                st.success("Account created: sign in with it.")
            except ApiError as exc:
                st.error(exc.detail)


def _feature_input(name: str, spec: dict[str, Any], brand: str) -> Any:
    label = name
    if spec["kind"] == "numeric":
        integer = spec["dtype"] == "int"
        cast = int if integer else float
        return st.number_input(
            label, min_value=cast(spec["allowed_min"]), max_value=cast(spec["allowed_max"]),
            value=cast(spec["default"]), step=cast(1) if integer else 0.1,
            help=f"seen in training: {spec['min']} to {spec['max']}")
    if spec["kind"] == "categorical":
        options = spec["categories"]
        return st.selectbox(label, options, index=options.index(spec["default"]))
    models = spec.get("by_brand", {}).get(brand) or [spec.get("default", "")]
    return st.selectbox(label, models)


def predict() -> None:
    """A form with all 25 features, built from the model card; submit to one or more models."""
    st.title("Predict a price")
    _notice()
    try:
        models = api().models()
    except ApiError as exc:
        _failed(exc)
        return
    names = [m["model_name"] for m in models]
    prices = {m["model_name"]: m["price"] for m in models}
    st.dataframe(pd.DataFrame([{"model": m["model_name"], "version": m["version"],
                                "price (credits)": m["price"],
                                "CV R²": round(m["metrics"]["r2"]["mean"], 3),
                                "CV RMSE ($)": round(m["metrics"]["rmse"]["mean"])} for m in models]),
                 hide_index=True)
    chosen = st.multiselect("Models", names, default=names[:1],
                            format_func=lambda n: f"{n} ({prices[n]} credits)")
    try:
        schema = api().card(names[0])["input_schema"]
    except ApiError as exc:
        _failed(exc)
        return
    brands = schema["brand"]["categories"]
    brand = st.selectbox("brand", brands, index=brands.index(schema["brand"]["default"]))
    with st.form("car"):
        columns = st.columns(3)
        data: dict[str, Any] = {"brand": brand}
        fields = [f for f in schema if f != "brand"]
        for i, field in enumerate(fields):
            with columns[i % 3]:
                data[field] = _feature_input(field, schema[field], brand)
        total = sum(prices[n] for n in chosen)
        submitted = st.form_submit_button(f"Predict with {len(chosen)} model(s) for {total} credits",
                                          type="primary", disabled=not chosen)
    if submitted:
        notices = []
        for name in chosen:
            try:
                job = api().predict(name, data)
                notices.append(("success", f"{name}: job {job['job_id']} queued ({job['price']} "
                                f"credits charged, {job['balance']} left). Follow it under "
                                "Running jobs."))
            except ApiError as exc:
                if exc.status != 402:
                    _failed(exc)
                    return
                notices.append(("warning", f"{name}: {exc.detail}. Top up in the sidebar."))
        st.session_state.notices = notices
        st.rerun()  # so the balance in the sidebar shows the charge at once


def _jobs_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "time": pd.to_datetime(j["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        "model": f"{j['model_name']} v{j['model_version']}", "price": j["price"],
        "status": j["status"],
        "result ($)": None if j.get("result") is None else round(j["result"], 2),
        "error": j.get("error") or "", "job": j["job_id"]} for j in jobs])


PUSH_WAIT_SECONDS = 3.0  # how long one wait for a pushed update may hold the page


def running() -> None:
    """Queued and started jobs; updated the moment one changes (pushed, not polled)."""
    st.title("Running jobs")

    @st.fragment(run_every=PUSH_WAIT_SECONDS)  # the fallback; updates redraw at once
    def live() -> None:
        try:
            jobs = api().running()
            recent = api().history(limit=5)
        except ApiError as exc:
            _failed(exc)
            return
        if jobs:
            st.dataframe(_jobs_frame(jobs).drop(columns=["result ($)", "error"]), hide_index=True)
        else:
            st.info("No job is running.")
        done = [j for j in recent if j["status"] in ("finished", "failed")]
        if done:
            st.subheader("Just finished")
            st.caption(f"{len(done)} of your latest jobs ended")
            st.dataframe(_jobs_frame(done), hide_index=True)
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
    try:
        jobs = api().history()
    except ApiError as exc:
        _failed(exc)
        return
    if not jobs:
        st.info("No predictions yet.")
        return
    frame = _jobs_frame(jobs)
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
        st.dataframe(pd.DataFrame(sorted((job.get("features") or {}).items()),
                                  columns=["feature", "value"]).astype(str), hide_index=True)


def ledger() -> None:
    """The audited ledger: every credit movement, replayed from the event store."""
    st.title("Ledger")
    try:
        audit = api().audit()
    except ApiError as exc:
        _failed(exc)
        return
    if audit["consistent"]:
        st.success(f"Consistent: replayed balance {audit['replayed_balance']} equals the "
                   f"projected balance {audit['projected_balance']}.")
    else:
        st.error(f"Inconsistent: replayed {audit['replayed_balance']}, projected "
                 f"{audit['projected_balance']}.")
    entries = pd.DataFrame(audit["entries"])
    if entries.empty:
        return
    entries["time"] = pd.to_datetime(entries["time"])
    st.subheader("Balance over time")
    st.line_chart(entries.set_index("time")["balance"])
    charges = entries[entries["type"] == "Charged"]
    refunds = entries[entries["type"] == "Refunded"]
    if not charges.empty:
        st.subheader("Spend per model (after refunds)")
        spent = charges.groupby("detail")["amount"].sum().abs()
        refunded_jobs = set(refunds["job_id"])
        net = charges[~charges["job_id"].isin(refunded_jobs)].groupby("detail")["amount"].sum().abs()
        st.bar_chart(pd.DataFrame({"charged": spent, "net": net}).fillna(0))
    st.subheader("Entries")
    view = entries.assign(time=entries["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    st.dataframe(view[["time", "type", "amount", "balance", "detail", "job_id"]], hide_index=True)


def models() -> None:
    """Compare the models: cross-validated metrics, prices, predicted vs actual."""
    st.title("Models")
    try:
        cards = [api().card(m["model_name"]) for m in api().models()]
    except ApiError as exc:
        _failed(exc)
        return
    table = pd.DataFrame([{"model": c["model_name"], "price": c["price"],
                           "R²": c["metrics"]["r2"]["mean"], "RMSE": c["metrics"]["rmse"]["mean"],
                           "MAE": c["metrics"]["mae"]["mean"]} for c in cards]).set_index("model")
    left, right = st.columns(2)
    left.subheader("Cross-validated R² (higher is better)")
    left.bar_chart(table["R²"])
    right.subheader("Price (credits)")
    right.bar_chart(table["price"])
    st.subheader("Errors in dollars (lower is better)")
    st.bar_chart(table[["RMSE", "MAE"]])
    st.subheader("Predicted vs actual (out of fold)")
    points = pd.DataFrame([{"model": c["model_name"], "actual": a, "predicted": p}
                           for c in cards for a, p in c["oof"]])
    if not points.empty:
        st.scatter_chart(points, x="actual", y="predicted", color="model")
    st.caption(f"{cards[0]['cv']['n_splits']}-fold CV repeated {cards[0]['cv']['n_repeats']} times "
               f"on {cards[0]['training_rows']} cars." if cards else "")
