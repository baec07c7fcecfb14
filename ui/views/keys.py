"""API keys: issue one for an integration (its secret shown once), see when each was last
used, revoke one."""

from __future__ import annotations

import streamlit as st

from ui.components import api, call

SCOPES = {"predict": "submit jobs and read them", "read": "balance, statements, history, jobs, models",
          "batch": "fleet batches", "webhooks": "manage webhooks"}


def keys() -> None:
    """The form to issue a key, the secret of the one just issued, and the list with revoke."""
    st.title("API keys")
    st.caption("For integrations: send `Authorization: Bearer <key>` instead of signing in. A key "
               "works within its scopes and its rate limit; it can never top up, erase the account "
               "or manage keys. carprice keeps only a hash of it: copy it when it is shown.")
    with st.form("issue_key", clear_on_submit=True):
        name = st.text_input("Name", placeholder="dealer DMS", max_chars=100)
        scopes = st.multiselect("Scopes", list(SCOPES), default=["predict", "read"],
                                format_func=lambda s: f"{s}: {SCOPES[s]}")
        rate = st.number_input("Requests per minute", min_value=1, max_value=100_000, value=600)
        if st.form_submit_button("Issue key", type="primary"):
            made = call(api().issue_key, name, scopes, int(rate))
            if made is not None:
                st.session_state.new_key = made
    made = st.session_state.get("new_key")
    if made:
        st.success(f"Key {made['name']!r} issued. Copy it now: it will not be shown again.")
        st.code(made["secret"], language=None)
        if st.button("I have copied it"):
            st.session_state.pop("new_key", None)
            st.rerun()
    found = call(api().keys)
    if not found:
        if found is not None:
            st.info("No keys yet.")
        return
    st.subheader("Your keys")
    for k in found:
        left, right = st.columns([5, 1])
        state = f"revoked {_when(k['revoked_at'])}" if k["revoked_at"] else "live"
        used = _when(k["last_used_at"]) if k["last_used_at"] else "never"
        left.markdown(f"**{k['name']}** `{k['prefix']}…` · {', '.join(k['scopes'])} · "
                      f"{k['rate_limit_per_minute']}/min · created {_when(k['created_at'])} · "
                      f"last used {used} · {state}")
        if not k["revoked_at"] and right.button("Revoke", key=f"revoke-{k['key_id']}"):
            if call(api().revoke_key, k["key_id"]) is not None:
                st.rerun()


def _when(iso: str) -> str:
    """An API time as the page shows it: 2026-12-07 20:16 UTC."""
    return iso[:16].replace("T", " ") + " UTC"
