"""A client that behaves exactly as the old Streamlit UI's `requests` helpers did."""

from __future__ import annotations

from typing import Any

import requests


class OldClient:
    """Checks `status_code == 200`, reads `detail` on failure, sends the job id as a GET body."""

    def __init__(self, base: str) -> None:
        self.base = f"{base}/api/v1"
        self.token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _check(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code == 200:
            return response.json()  # type: ignore[no-any-return]
        raise RuntimeError(response.json()["detail"])

    def sign_up(self, name: str, email: str, password: str) -> dict[str, Any]:
        return self._check(requests.post(f"{self.base}/sign_up", timeout=30,
                                         json={"name": name, "email": email, "password": password}))

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        body = self._check(requests.post(f"{self.base}/sign_in", timeout=30,
                                         json={"email": email, "password": password}))
        self.token = body["token"]
        return body

    def balance(self) -> int:
        return int(self._check(requests.get(f"{self.base}/balance", headers=self._headers(),
                                            timeout=30))["amount"])

    def top_up(self, amount: int) -> int:
        new_amount = self.balance() + amount
        return int(self._check(requests.post(f"{self.base}/balance", headers=self._headers(),
                                             json={"new_amount": new_amount}, timeout=30))["amount"])

    def predictors(self) -> list[dict[str, Any]]:
        return self._check(requests.get(f"{self.base}/predictors", headers=self._headers(),
                                        timeout=30))["models"]  # type: ignore[no-any-return]

    def predict(self, model_name: str, data: dict[str, Any]) -> str:
        return str(self._check(requests.post(f"{self.base}/predict", headers=self._headers(),
                                             json={"model_name": model_name, "data": data},
                                             timeout=30))["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return self._check(requests.get(f"{self.base}/predict", headers=self._headers(),
                                        json={"job_id": job_id}, timeout=30))

    def history(self) -> list[str]:
        return self._check(requests.get(f"{self.base}/history", headers=self._headers(),
                                        timeout=30))["job_ids"]  # type: ignore[no-any-return]
