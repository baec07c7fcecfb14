"""What every page shares: the session's API client, the one way API errors are shown, the
notices carried across a rerun, sign-out."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import streamlit as st

from ui.client import ApiClient, ApiError

T = TypeVar("T")
P = ParamSpec("P")


def api() -> ApiClient:
    """The session's API client."""
    client: ApiClient = st.session_state.client
    return client


def failed(exc: ApiError) -> None:
    """Show an API error as a message; an expired or invalid token signs the user out."""
    if exc.status == 401 and st.session_state.get("user"):
        sign_out("Your session expired; please sign in again.")
        st.rerun()
    st.error(exc.detail)


def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """`fn(*args, **kwargs)`, or None once its API error is shown (failed())."""
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        failed(exc)
        return None


def sign_out(message: str | None = None) -> None:
    """Forget the token and the user."""
    api().token = None
    st.session_state.pop("user", None)
    if message:
        st.session_state.notice = message


def notices() -> None:
    """The messages a page left for the next run (after st.rerun)."""
    if msg := st.session_state.pop("notice", None):
        st.success(msg)
    for kind, text in st.session_state.pop("notices", []):
        (st.success if kind == "success" else st.warning)(text)


def money(value: float | None) -> str:
    """Dollars as people read them: $12,345 (empty when there is none)."""
    return "" if value is None or value != value else f"${value:,.0f}"  # noqa: PLR0124 - NaN
