"""Signing in and up; the sidebar of a signed-in user (balance, top-up, sign-out, erasure)."""

from __future__ import annotations

import streamlit as st

from ui.client import ApiError
from ui.components import api, call, notices, sign_out


def account() -> None:
    """Sign in or create an account."""
    st.title("carprice")
    st.caption("Car price predictions, paid in credits.")
    notices()
    sign_in_tab, sign_up_tab = st.tabs(["Sign in", "Create account"])
    with sign_in_tab, st.form("sign_in"):
        email = st.text_input("Email")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                body = api().sign_in(email, password)
                st.session_state.user = {"name": body["name"], "email": body["email"]}
                st.rerun()
            except ApiError as exc:  # not signed in yet: nothing to sign out of
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
        wallet = call(api().wallet)
        if wallet is not None:
            st.metric("Balance", f"{wallet['amount']} credits")
            if wallet.get("reserved") or wallet.get("promotional"):
                st.caption(f"{wallet.get('reserved') or 0} on hold for running jobs · "
                           f"{wallet.get('promotional') or 0} of the balance promotional "
                           "(spent first; it expires)")
        with st.form("top_up", clear_on_submit=True):
            amount = st.number_input("Top up (credits)", min_value=1, max_value=1_000_000, value=50, step=10)
            if st.form_submit_button("Top up") and call(api().deposit, int(amount)) is not None:
                st.session_state.notice = f"Added {int(amount)} credits."
                st.rerun()
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
            if call(api().erase_me, password) is None:
                return
            sign_out("Your account was erased. Its email can sign up again as a new account.")
            st.rerun()
