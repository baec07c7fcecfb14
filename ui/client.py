"""The dashboard's HTTP client: the API is the only thing the UI talks to."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import requests

# what a request body may be
Json: TypeAlias = None | bool | int | float | str | Sequence["Json"] | Mapping[str, "Json"]


class ApiError(Exception):
    """An API error with the human-readable `detail` the API sent."""

    def __init__(self, status: int, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.body = status, detail, body or {}


class ApiClient:
    """Thin wrapper over the REST API; raises ApiError with the API's detail."""

    def __init__(self, base_url: str, token: str | None = None, proxy_token: str | None = None,
                 browser: str | None = None) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token = token
        self.session = requests.Session()
        if proxy_token and browser:
            # the API throttles sign-ins by the browser's address, not the dashboard's own
            self.session.headers.update({"X-Carprice-Proxy": proxy_token,
                                         "X-Forwarded-For": browser})

    def _call(self, method: str, path: str, *, json: Json = None,
              params: Mapping[str, str | float] | None = None, data: Mapping[str, str] | None = None,
              files: Mapping[str, tuple[str, bytes, str]] | None = None) -> Any:  # the API's JSON
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = self.session.request(method, self.base + path, headers=headers, timeout=15, json=json,
                                     params=params, data=data, files=files)
        except requests.RequestException:
            raise ApiError(503, "the carprice API is not reachable; is it running?") from None
        try:
            body = r.json()
        except ValueError:
            body = {"detail": r.text[:200] or r.reason}
        if r.status_code >= 400:
            raise ApiError(r.status_code, str(body.get("detail", r.reason)), body)
        return body

    def batch_csv(self, model_name: str, filename: str, content: bytes) -> dict[str, Any]:
        """Submit a fleet CSV (priced and charged together; one job per row)."""
        return dict(self._call("POST", "/predict/batch", data={"model_name": model_name},
                               files={"file": (filename, content, "text/csv")}))

    def _download(self, path: str, timeout: float, **params: str) -> bytes:
        """A file the API answers (CSV); errors as ApiError, like every other call."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = self.session.get(self.base + path, params=params, headers=headers, timeout=timeout)
        except requests.RequestException:
            raise ApiError(503, "the carprice API is not reachable; is it running?") from None
        if r.status_code >= 400:
            try:
                detail = str(r.json().get("detail", r.reason))
            except ValueError:
                detail = r.text[:200] or r.reason
            raise ApiError(r.status_code, detail)
        return r.content

    def statement_csv(self) -> bytes:
        """The whole statement (every credit movement, running balance), as CSV."""
        return self._download("/balance/statement", 30, format="csv")

    def receipt(self, job_id: str) -> bytes:
        """A job's receipt (JSON): what it paid for, and the events that prove it."""
        return self._download(f"/predict/{job_id}/receipt", 30)

    def batch(self, batch_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/predict/batch/{batch_id}"))

    def batch_results(self, batch_id: str) -> bytes:
        """The batch's rows with prices and ranges, as CSV."""
        return self._download(f"/predict/batch/{batch_id}/results.csv", 60)

    def sign_up(self, name: str, email: str, password: str) -> dict[str, Any]:
        return self._call("POST", "/sign_up", json={"name": name, "email": email, "password": password})

    def erase_me(self, password: str) -> dict[str, Any]:
        """Erase the account (confirmed with its password); the token stops working."""
        return dict(self._call("DELETE", "/me", json={"password": password}))

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        body = self._call("POST", "/sign_in", json={"email": email, "password": password})
        self.token = body["access_token"]
        return body

    def balance(self) -> int:
        return int(self._call("GET", "/balance")["amount"])

    def wallet(self) -> dict[str, Any]:
        """{amount (available), reserved, promotional, ...}."""
        return dict(self._call("GET", "/balance"))

    def balance_as_of(self, when: str) -> int:
        """The balance at an ISO-8601 time, replayed from the event store."""
        return int(self._call("GET", "/balance", params={"as_of": when})["amount"])

    def deposit(self, amount: int) -> int:
        return int(self._call("POST", "/balance", json={"amount": amount})["amount"])

    def models(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/predictors")["models"])

    def card(self, model_name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/predictors/{model_name}/card"))

    def predict(self, model_name: str, data: dict[str, Any], explain: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model_name": model_name, "data": data}
        if explain:
            body["explain"] = True
        return dict(self._call("POST", "/predict", json=body))

    def running(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/jobs/running")["jobs"])

    def history(self, limit: int = 500) -> list[dict[str, Any]]:
        return list(self._call("GET", "/history", params={"limit": limit})["jobs"])

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        """A job; with `wait`, answered as soon as it ends (long-poll), at most `wait` s."""
        params = {"wait": wait} if wait else {}
        return dict(self._call("GET", f"/predict/{job_id}", params=params))

    def next_update(self, after: str | None, wait: float) -> str | None:
        """Block until the next job update after event id `after` (None: from now), at most
        `wait` seconds, over the server-sent event stream; the id of that update (or `after`)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if after:
            headers["Last-Event-ID"] = after
        deadline = time.monotonic() + wait
        try:
            with self.session.get(self.base + "/jobs/events", headers=headers, stream=True,
                                  timeout=(5, wait)) as r:
                if r.status_code >= 400:
                    return after
                for raw in r.iter_lines():
                    line = raw.decode("utf-8", "replace")
                    if line.startswith("id:"):
                        return line[3:].strip()
                    if time.monotonic() > deadline:
                        break
        except requests.RequestException:  # a read timeout: nothing happened in `wait` s
            pass
        return after

    def audit(self) -> dict[str, Any]:
        return dict(self._call("GET", "/balance/audit"))

    def live(self, model_name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/predictors/{model_name}/live"))

    def drift(self, model_name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/predictors/{model_name}/drift"))

    def challengers(self, model_name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/predictors/{model_name}/challengers"))

    def report_sale(self, job_id: str, sold_price: float) -> dict[str, Any]:
        return dict(self._call("POST", f"/predict/{job_id}/outcome", json={"sold_price": sold_price}))

    def keys(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/keys")["keys"])

    def issue_key(self, name: str, scopes: list[str], rate_limit_per_minute: int) -> dict[str, Any]:
        return dict(self._call("POST", "/keys", json={"name": name, "scopes": scopes,
                                                     "rate_limit_per_minute": rate_limit_per_minute}))

    def revoke_key(self, key_id: str) -> bool:
        self._call("DELETE", f"/keys/{key_id}")  # 204: no body
        return True

    def stalled(self) -> dict[str, Any]:
        """The projections that have stopped advancing with work waiting (from /readyz; {}
        when none, or when the API cannot say)."""
        try:
            r = self.session.get(self.base.removesuffix("/api/v1") + "/readyz", timeout=5)
            return dict(r.json().get("checks", {}).get("projections_stalled") or {})
        except (requests.RequestException, ValueError, AttributeError):
            return {}
