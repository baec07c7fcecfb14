"""A statement with a finished, a failed and an expired job, a receipt, then the account erased
and what is left of it. On the dev stack, with models trained and the projector running:

    .venv/bin/carprice services up && .venv/bin/carprice migrate && .venv/bin/carprice train
    .venv/bin/carprice consume projections &      # the read tables
    .venv/bin/carprice bench ledger

No inference runs: the script records the outcomes as inference and the reaper do (the
model's own price for the finished job, a model error, an expiry after the 5 s deadline).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg

from bench.common import sample_car, write_side
from commands.audit import statement
from commands.receipts import receipt
from commands.results import Outcome
from infra.settings import Settings
from model_registry.store import Registry


def ledger_demo(s: Settings) -> None:
    """Print the statement, the receipt and what erasure leaves (see the module's text)."""
    db = s.database_url or ""
    app = write_side(s, db)
    registry = Registry(s.registry_dir)
    car = sample_car(s)
    tag = uuid.uuid4().hex[:6]
    email = f"dana.{tag}@example.com"
    user = app.sign_up("Dana Demo", email, "password-123").user_id
    app.deposit(user, 100)
    app.grant_credits(user, 20, datetime.now(UTC) + timedelta(days=30), "welcome credits")
    offer = app.catalog.offer("linear_regression")
    finished = app.request_prediction(user, "linear_regression", car).job_id
    price, interval = _price(registry, offer.name, offer.version, car)
    app.record_outcome(Outcome(finished, price, offer.version, interval=interval))
    failed = app.request_prediction(user, "gradient_boosting", car).job_id
    app.fail_prediction(failed, "the model could not price this car")
    expired = app.request_prediction(user, "random_forest", car, deadline_seconds=5).job_id
    time.sleep(6)
    app.expire_prediction(expired)

    print(f"## statement of {email} ({user})\n")  # noqa: T201
    st = statement(app, user)
    print(pd.DataFrame([{"time": x.time.strftime("%H:%M:%S.%f")[:-3], "kind": x.kind, "amount": x.amount,  # noqa: T201
                         "credits": x.credits, "job": str(x.job_id)[:8] if x.job_id else "",
                         "model": x.model, "balance": x.balance, "reserved": x.reserved,
                         "detail": x.detail} for x in st.lines]).to_string(index=False))
    print(f"\nopening {st.opening}, closing {st.closing} (reserved {st.closing_reserved})\n")  # noqa: T201
    r = receipt(app, app.job(finished), registry.fingerprint)
    print("## receipt of the finished job (abridged)\n")  # noqa: T201
    print({k: r[k] for k in ("status", "model", "input_sha256", "credits")})  # noqa: T201
    print([(e["type"], e["position"]) for e in r["events"]], "\n")  # noqa: T201

    app.erase_account(user, "password-123")
    time.sleep(3)  # the projector catches up
    print("## after DELETE /me: what is left of the account\n")  # noqa: T201
    with psycopg.connect(db, autocommit=True) as conn:
        for query in (
            "SELECT user_id, balance, reserved, promotional FROM balances WHERE user_id = %s",
            "SELECT job_id, model_name, price, status FROM prediction_history WHERE user_id = %s",
            "SELECT user_id, key, erased_at FROM user_keys WHERE user_id = %s",
            "SELECT digest, user_id FROM email_index WHERE user_id = %s",
            "SELECT originator_version, topic, left(convert_from(state, 'UTF8'), 150) FROM "
            "carprice_events WHERE originator_id = %s ORDER BY originator_version",
        ):
            rows = conn.execute(query, (user,)).fetchall()
            print(f"{query.split(' FROM ')[1].split()[0]}: {rows}")  # noqa: T201
        hits = conn.execute("SELECT count(*) FROM carprice_events WHERE position(%s in state) > 0 "
                            "OR position(%s in state) > 0",
                            (email.encode(), b"Dana Demo")).fetchone()
        print(f"events holding the email or the name: {hits[0] if hits else '?'}")  # noqa: T201
    app.close()


def _price(registry: Registry, name: str, version: str,
           car: dict[str, object]) -> tuple[float, dict[str, float] | None]:
    model = registry.load(name, version)
    frame = pd.DataFrame([car])
    if not hasattr(model, "price"):
        return float(model.predict(frame)[0]), None
    p = model.price(frame)[0]
    return p.price, {"low": round(p.low, 2), "high": round(p.high, 2), "level": model.level}
