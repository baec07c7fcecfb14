"""carprice dashboard (Streamlit). Run: `carprice ui` (or `streamlit run ui/dashboard.py`)."""

from __future__ import annotations

import os

import streamlit as st

from ui import views
from ui.client import ApiClient

st.set_page_config(page_title="carprice", page_icon=":material/directions_car:", layout="wide")

if "client" not in st.session_state:
    # the browser's address (None from localhost) goes with every call, vouched for by the
    # proxy token the API shares with the dashboard
    st.session_state.client = ApiClient(os.environ.get("CARPRICE_API_URL", "http://127.0.0.1:8000"),
                                        proxy_token=os.environ.get("CARPRICE_PROXY_TOKEN"),
                                        browser=st.context.ip_address or "127.0.0.1")

signed_in = bool(st.session_state.get("user"))
if signed_in:
    nav = st.navigation([
        st.Page(views.predict, title="Predict", icon=":material/query_stats:", url_path="predict",
                default=True),
        st.Page(views.fleet, title="Fleet", icon=":material/garage:", url_path="fleet"),
        st.Page(views.running, title="Running jobs", icon=":material/hourglass_top:", url_path="running"),
        st.Page(views.history, title="History", icon=":material/history:", url_path="history"),
        st.Page(views.ledger, title="Ledger", icon=":material/receipt_long:", url_path="ledger"),
        st.Page(views.models, title="Models", icon=":material/leaderboard:", url_path="models"),
        st.Page(views.keys, title="API keys", icon=":material/key:", url_path="keys"),
    ])
    views.sidebar()
else:
    nav = st.navigation([st.Page(views.account, title="Sign in", icon=":material/login:",
                                 url_path="account")])
nav.run()
