"""The audited ledger: every credit movement, replayed from the event store by the API."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from ui import charts
from ui.components import api, call


def ledger() -> None:
    """Consistency, balance over time, the balance as of a moment, spend per model, entries."""
    st.title("Ledger")
    audit = call(api().audit)
    if audit is None:
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
    entries["time"] = pd.to_datetime(entries["time"], utc=True, format="ISO8601")  # ".5Z" and "Z" both
    st.subheader("Balance over time")
    st.altair_chart(charts.balance_chart(entries))
    _balance_as_of(entries)
    spend = audit.get("spend_per_model") or []
    if any(s["spent"] or s["on_hold"] or s["given_back"] for s in spend):
        st.subheader("Spend per model")
        st.altair_chart(charts.spend_chart(spend))
    st.subheader("Entries")
    statement = call(api().statement_csv)
    if statement is not None:
        st.download_button("Download the statement (CSV)", statement,
                           file_name="carprice-statement.csv", mime="text/csv")
    view = entries.assign(time=entries["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    columns = [c for c in ("time", "type", "amount", "balance", "reserved", "detail", "job_id")
               if c in view]
    st.dataframe(view[columns].fillna({"detail": "", "job_id": ""}), hide_index=True)
    expiries = entries[entries["type"] == "GrantExpired"]
    for _, e in expiries.iterrows():
        st.caption(f"Promotional grant {e['detail']} expired on {e['time']:%Y-%m-%d %H:%M:%S} UTC: "
                   f"{-e['amount']} credits left in it were removed.")


def _balance_as_of(entries: pd.DataFrame) -> None:
    """A date and time picker: the balance then, replayed by the API."""
    last = entries["time"].max().to_pydatetime()
    left, right, out = st.columns(3)
    day = left.date_input("Balance as of (UTC date)", value=last.date(), key="as_of_day")
    at = right.time_input("time", value=last.time().replace(second=0, microsecond=0), key="as_of_time",
                          step=60)
    # the end of the picked minute: an entry in its last second (at :59.5) counts too
    when = dt.datetime.combine(day, at, tzinfo=dt.UTC) + dt.timedelta(minutes=1, microseconds=-1)
    balance = call(api().balance_as_of, when.isoformat())
    if balance is not None:
        out.metric("Balance then", f"{balance} credits")
