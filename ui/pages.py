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
        if stalled := api().stalled():
            st.warning("The read side has stopped advancing (" + ", ".join(sorted(stalled)) +
                       "): balances and job statuses shown here may be out of date. Your "
                       "requests are still recorded and charged exactly.", icon=":material/sync_problem:")
        try:
            wallet = api().wallet()
            st.metric("Balance", f"{wallet['amount']} credits")
            if wallet.get("reserved") or wallet.get("promotional"):
                st.caption(f"{wallet.get('reserved') or 0} on hold for running jobs · "
                           f"{wallet.get('promotional') or 0} of the balance promotional "
                           "(spent first; it expires)")
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
        _erase_form()


def _erase_form() -> None:
    with st.expander("Delete my account"), st.form("erase", clear_on_submit=True):
        st.caption("Your name, email and password are erased for good and you are signed out. "
                   "The amounts of your credits and jobs stay, without them, for the books.")
        password = st.text_input("Your password, to confirm", type="password")
        sure = st.checkbox("I understand that this cannot be undone")
        if st.form_submit_button("Delete my account"):
            if not sure:
                st.error("Tick the box to confirm.")
                return
            try:
                api().erase_me(password)
            except ApiError as exc:
                _failed(exc)
                return
            sign_out("Your account was erased. Its email can sign up again as a new account.")
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
    surcharges = {m["model_name"]: m.get("explain_price") or 0 for m in models}
    explainable = [n for n in chosen if surcharges[n]]
    explain = bool(explainable) and st.checkbox(
        f"Explain the price (+{max(surcharges[n] for n in explainable)} credits per model; "
        "refunded if the explanation fails)", key="explain")
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
        total = sum(prices[n] + (surcharges[n] if explain else 0) for n in chosen)
        submitted = st.form_submit_button(f"Predict with {len(chosen)} model(s) for {total} credits",
                                          type="primary", disabled=not chosen)
    if submitted:
        notices, submitted_jobs = [], []
        for name in chosen:
            try:
                job = api().predict(name, data, explain=explain and bool(surcharges[name]))
                submitted_jobs.append(job["job_id"])
                notices.append(("success", f"{name}: {job['price']} credits charged, "
                                f"{job['balance']} left."))
            except ApiError as exc:
                if exc.status != 402:
                    _failed(exc)
                    return
                notices.append(("warning", f"{name}: {exc.detail}. Top up in the sidebar."))
        st.session_state.notices = notices
        st.session_state.results = submitted_jobs
        st.rerun()  # so the balance in the sidebar shows the charge at once
    _results(st.session_state.get("results") or [])


RESULT_WAIT_SECONDS = 20.0  # a long-poll: answered the moment the job ends


def _results(job_ids: list[str]) -> None:
    """The jobs just submitted, waited for (long-poll), as prices with their ranges."""
    for job_id in job_ids:
        try:
            with st.spinner("Pricing..."):
                job = api().job(job_id, wait=RESULT_WAIT_SECONDS)
        except ApiError as exc:
            _failed(exc)
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
    st.markdown(f"#### {name}: ${job['result']:,.0f}", help=f"job {job['job_id']}")
    if interval:
        st.caption(f"{interval['level']:.0%} range: ${interval['low']:,.0f} to "
                   f"${interval['high']:,.0f}")
        st.altair_chart(_range_chart(job["result"], interval))
    explanation = job.get("explanation")
    if explanation:
        st.caption(f"Why: an average car costs ${explanation['base']:,.0f}; each bar is what a "
                   "feature of this car adds or takes away (they add up to the price).")
        st.altair_chart(_explanation_chart(explanation))
    elif job.get("explain") and job.get("error"):
        st.warning(job["error"])


def _range_chart(price: float, interval: dict[str, float]) -> Any:
    import altair as alt

    band = pd.DataFrame([{"low": interval["low"], "high": interval["high"], "price": price, "y": ""}])
    base = alt.Chart(band).encode(y=alt.Y("y:N", title=None))
    axis = alt.X("low:Q", title="price ($)", scale=alt.Scale(zero=False))
    return (base.mark_rule(strokeWidth=8, opacity=0.35).encode(x=axis, x2="high:Q")
            + base.mark_point(size=120, filled=True).encode(x="price:Q")).properties(height=70)


def _explanation_chart(explanation: dict[str, Any]) -> Any:
    import altair as alt

    rows = pd.DataFrame([{"feature": f"{c['feature']} = {c['value']}", "effect": c["effect"],
                          "direction": "raises" if c["effect"] > 0 else "lowers"}
                         for c in explanation["contributions"][:12]])
    return alt.Chart(rows).mark_bar().encode(
        x=alt.X("effect:Q", title="effect on the price ($)"),
        y=alt.Y("feature:N", sort=None, title=None),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["raises", "lowers"],
                                                        range=["#2e7d32", "#c62828"])),
    ).properties(height=28 * len(rows) + 30)


def fleet() -> None:
    """Price a fleet from a CSV: progress while the rows run, then the table and a download."""
    st.title("Price a fleet")
    try:
        models = api().models()
    except ApiError as exc:
        _failed(exc)
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
                if exc.status in (402, 413, 422):
                    st.error(exc.detail)
                    return
                _failed(exc)
                return
            st.session_state.fleet_batch = str(accepted["batch_id"])
            st.session_state.notices = [("success", f"{accepted['rows']} cars accepted: "
                                         f"{accepted['total_price']} credits charged, "
                                         f"{accepted['balance']} left.")]
            st.rerun()
    _notice()
    batch_id = st.session_state.get("fleet_batch")
    if batch_id:
        _fleet_progress(batch_id)


FLEET_REFRESH_SECONDS = 1.0


def _fleet_progress(batch_id: str) -> None:
    cached = st.session_state.get("fleet_results")
    if cached and cached[0] == batch_id:
        _fleet_table(batch_id, cached[1])
        return

    @st.fragment(run_every=FLEET_REFRESH_SECONDS)
    def live() -> None:
        try:
            batch = api().batch(batch_id)
        except ApiError as exc:
            _failed(exc)
            return
        ended = batch["done"] + batch["failed"]
        st.progress(ended / max(batch["rows"], 1),
                    text=f"{ended} of {batch['rows']} cars priced ({batch['failed']} failed and "
                         "refunded)")
        if batch["status"] != "finished":
            return
        try:
            content = api().batch_results(batch_id)
        except ApiError as exc:
            _failed(exc)
            return
        st.session_state.fleet_results = (batch_id, content)
        st.rerun()  # the whole page: the finished batch is drawn once, without the timer

    live()


def _fleet_table(batch_id: str, content: bytes) -> None:
    import io

    table = pd.read_csv(io.BytesIO(content))
    failed = int((table["status"] == "failed").sum())
    st.success(f"{len(table)} cars priced" + (f", {failed} failed and refunded" if failed else "")
               + ".")
    st.dataframe(table[["row", "brand", "model", "price", "low", "high", "status", "error"]],
                 hide_index=True)
    st.download_button("Download the results (CSV)", content, file_name=f"fleet-{batch_id}.csv",
                       mime="text/csv")


def _jobs_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "time": pd.to_datetime(j["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        "model": f"{j['model_name']} v{j['model_version']}", "price": j["price"],
        "status": j["status"],
        "result ($)": None if j.get("result") is None else round(j["result"], 2),
        "range ($)": _range_text(j.get("interval")),
        "error": j.get("error") or "", "job": j["job_id"]} for j in jobs])


def _range_text(interval: dict[str, float] | None) -> str:
    return f"{interval['low']:,.0f} to {interval['high']:,.0f}" if interval else ""


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
        show_result(job)
        _receipt_download(pick)
        st.subheader("Features")
        # a static table: it renders in any browser without the grid's canvas
        st.table(pd.DataFrame(sorted((job.get("features") or {}).items()),
                              columns=["feature", "value"]).astype(str).set_index("feature"))


def _receipt_download(job_id: str) -> None:
    try:
        content = api().receipt(job_id)
    except ApiError as exc:
        _failed(exc)
        return
    st.download_button("Download the receipt (JSON)", content, file_name=f"receipt-{job_id}.json",
                       mime="application/json", help="The model version and input it paid for, "
                       "and the events that moved its credits; an operator checks it with "
                       "`carprice audit receipt`.")


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
    import altair as alt

    entries["time"] = pd.to_datetime(entries["time"], utc=True, format="ISO8601")  # ".5Z" and "Z" both
    st.subheader("Balance over time")
    # a balance holds until the next entry: steps, not slopes; times to the second
    steps = entries[["time", "balance", "type"]]
    st.altair_chart(alt.Chart(steps).mark_line(interpolate="step-after", point=True).encode(
        x=alt.X("time:T", title=None, axis=alt.Axis(format="%b %d %H:%M:%S", labelAngle=-30)),
        y=alt.Y("balance:Q", title="credits"),
        tooltip=[alt.Tooltip("time:T", format="%Y-%m-%d %H:%M:%S"), "type", "balance"],
    ).properties(height=260))
    _balance_as_of(entries)
    _spend_per_model(entries)
    st.subheader("Entries")
    try:
        st.download_button("Download the statement (CSV)", api().statement_csv(),
                           file_name="carprice-statement.csv", mime="text/csv")
    except ApiError as exc:
        _failed(exc)
    view = entries.assign(time=entries["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    columns = [c for c in ("time", "type", "amount", "balance", "reserved", "detail", "job_id")
               if c in view]
    st.dataframe(view[columns], hide_index=True)
    expiries = entries[entries["type"] == "GrantExpired"]
    for _, e in expiries.iterrows():
        st.caption(f"Promotional grant {e['detail']} expired on {e['time']:%Y-%m-%d %H:%M:%S} UTC: "
                   f"{-e['amount']} credits left in it were removed.")


def spend_table(entries: pd.DataFrame) -> pd.DataFrame:
    """Per model: credits spent (finished jobs), on hold (running ones) and given back (failed
    or expired ones); together, what was held or charged for it. Wallets from before holds
    count charges less refunds as spent."""
    paid = entries[entries["type"].isin(["Reserved", "Charged"])]
    if paid.empty:
        return pd.DataFrame(columns=["spent", "on hold", "given back"])
    model_of = dict(zip(paid["job_id"], paid["detail"], strict=False))
    moved = entries.assign(model=entries["job_id"].map(model_of),
                           credits=entries.get("credits", entries["amount"].abs()))
    back = moved[moved["type"].isin(["Released", "Refunded"])].groupby("model")["credits"].sum()
    spent = (moved[moved["type"] == "Captured"].groupby("model")["credits"].sum()
             .add(moved[moved["type"] == "Charged"].groupby("model")["credits"].sum(), fill_value=0)
             .sub(moved[moved["type"] == "Refunded"].groupby("model")["credits"].sum(), fill_value=0))
    held = moved[moved["type"] == "Reserved"].groupby("model")["credits"].sum().sub(
        moved[moved["type"].isin(["Captured", "Released"])].groupby("model")["credits"].sum(),
        fill_value=0)
    return pd.DataFrame({"spent": spent, "on hold": held, "given back": back}).fillna(0)


def _spend_per_model(entries: pd.DataFrame) -> None:
    import altair as alt

    spend = spend_table(entries)
    if spend.empty:
        return
    st.subheader("Spend per model")
    bars = spend.reset_index(names="model").melt(
        id_vars="model", value_vars=["spent", "on hold", "given back"], var_name="credits",
        value_name="amount")
    st.altair_chart(alt.Chart(bars[bars["amount"] > 0]).mark_bar().encode(
        x=alt.X("model:N", title=None), y=alt.Y("amount:Q", title="credits"),
        color=alt.Color("credits:N", title=None, scale=alt.Scale(
            domain=["spent", "on hold", "given back"], range=["#1f77b4", "#ffb74d", "#b0bec5"])),
        tooltip=["model", "credits", "amount"]).properties(height=240))


def _balance_as_of(entries: pd.DataFrame) -> None:
    """A date and time picker: the balance then, replayed by the API."""
    import datetime as dt

    last = entries["time"].max().to_pydatetime()
    left, right, out = st.columns(3)
    day = left.date_input("Balance as of (UTC date)", value=last.date(), key="as_of_day")
    at = right.time_input("time", value=last.time().replace(second=0, microsecond=0), key="as_of_time",
                          step=60)
    # the end of the picked minute: an entry in its last second (at :59.5) counts too
    when = dt.datetime.combine(day, at, tzinfo=dt.UTC) + dt.timedelta(minutes=1, microseconds=-1)
    try:
        out.metric("Balance then", f"{api().balance_as_of(when.isoformat())} credits")
    except ApiError as exc:
        _failed(exc)


def models() -> None:
    """Compare the models: cross-validated metrics, prices, predicted vs actual."""
    st.title("Models")
    try:
        cards = [api().card(m["model_name"]) for m in api().models()]
    except ApiError as exc:
        _failed(exc)
        return
    import altair as alt

    def metric(c: dict[str, Any], name: str) -> float | None:
        return c["metrics"].get(name, {}).get("mean")

    table = pd.DataFrame([{"model": c["model_name"], "price": c["price"],
                           "explain +": c.get("explain_price") or None,
                           "R²": metric(c, "r2"), "R² std": c["metrics"]["r2"].get("std", 0.0),
                           "RMSE": metric(c, "rmse"), "MAE": metric(c, "mae"),
                           "range coverage": metric(c, "coverage"),
                           "range width ($)": metric(c, "width")} for c in cards])
    st.dataframe(table.round({"R²": 3, "R² std": 3, "RMSE": 0, "MAE": 0, "range coverage": 3,
                              "range width ($)": 0}), hide_index=True)
    left, right = st.columns(2)
    left.subheader("Cross-validated R² (higher is better)")
    low = max(0.0, float(table["R²"].min() - 2 * table["R² std"].max()))
    left.altair_chart(alt.Chart(table).mark_bar().encode(
        x=alt.X("model:N", title=None, sort="-y"),
        y=alt.Y("R²:Q", scale=alt.Scale(domain=[round(low, 2), 1.0]), title="R²"),
        color=alt.Color("model:N", legend=None)).properties(height=260))
    right.subheader("Errors in dollars (lower is better)")
    errors = table.melt(id_vars="model", value_vars=["RMSE", "MAE"], var_name="metric",
                        value_name="dollars")
    right.altair_chart(alt.Chart(errors).mark_bar().encode(
        x=alt.X("model:N", title=None), xOffset="metric:N", y=alt.Y("dollars:Q", title="$"),
        color=alt.Color("metric:N", title=None)).properties(height=260))
    st.subheader("Predicted vs actual (out of fold), with the 80 % ranges")
    points = pd.DataFrame([{"model": c["model_name"], "actual": a, "predicted": p,
                            "low": r[0] if r else None, "high": r[1] if r else None}
                           for c in cards
                           for (a, p), r in zip(c["oof"], c.get("oof_range") or [None] * len(c["oof"]),
                                                strict=True)])
    if not points.empty:
        chosen = st.selectbox("Model", [c["model_name"] for c in cards], key="oof_model")
        one = points[points["model"] == chosen]
        base = alt.Chart(one).encode(x=alt.X("actual:Q", title="actual price ($)"))
        chart = base.mark_circle(size=40).encode(y=alt.Y("predicted:Q", title="predicted ($)"))
        if one["low"].notna().all():
            chart = base.mark_rule(opacity=0.3).encode(y="low:Q", y2="high:Q") + chart
        line = alt.Chart(pd.DataFrame({"v": [one["actual"].min(), one["actual"].max()]})).mark_line(
            strokeDash=[4, 4], color="gray").encode(x="v:Q", y="v:Q")
        st.altair_chart((chart + line).properties(height=380))
    st.caption(f"{cards[0]['cv']['n_splits']}-fold CV repeated {cards[0]['cv']['n_repeats']} times "
               f"on {cards[0]['training_rows']} cars." if cards else "")
