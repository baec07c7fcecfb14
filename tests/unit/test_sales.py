"""Sale prices reported back: on the job as events, in fleet rows, and the live intervals."""

from __future__ import annotations

import math

import pytest

from commands.application import CarpriceApp, Outcome
from domain.accuracy import mean_interval, wilson
from domain.errors import InvalidBatch, InvalidSalePrice, JobNotFound, SaleNotReportable
from domain.events import JOB_SALE_REPORTED
from model_registry.features import cars_from_csv
from tests.fakes import CAR, FakeCatalog


@pytest.fixture
def app() -> CarpriceApp:
    return CarpriceApp(FakeCatalog())


def _user(app: CarpriceApp, email: str = "dana@example.com") -> object:
    user = app.sign_up("Dana", email, "password-123").user_id
    app.deposit(user, 100)
    return user


def test_a_report_is_an_event_on_the_job_and_a_correction_supersedes_it(app: CarpriceApp) -> None:
    user = _user(app)
    job = app.request_prediction(user, "cheap", CAR).job_id  # type: ignore[arg-type]
    app.record_outcomes([Outcome(job, result=10_000.0, model_version="1")])
    first = app.report_sale(user, job, 12_500)  # type: ignore[arg-type]
    assert (first.recorded, first.superseded) == (True, None)
    again = app.report_sale(user, job, 12_500)  # type: ignore[arg-type]
    assert again.recorded is False
    fixed = app.report_sale(user, job, 12_000.5)  # type: ignore[arg-type]
    assert (fixed.recorded, fixed.superseded) == (True, 12_500.0)
    assert app.job(job).sold_price == 12_000.5
    topics = [n.topic for n in app.recorder.select_notifications(start=1, limit=1000)]
    assert topics.count(JOB_SALE_REPORTED) == 2
    # it costs nothing: the balance is the deposit less the job's price
    assert app._wallet(user).balance == 100 - 10  # type: ignore[arg-type]


def test_a_report_needs_a_price_and_a_job_that_can_have_one(app: CarpriceApp) -> None:
    user, other = _user(app), _user(app, "eve@example.com")
    job = app.request_prediction(user, "cheap", CAR).job_id  # type: ignore[arg-type]
    for bad in (0, -5, math.inf, math.nan, 10**9, True, "12000"):
        with pytest.raises(InvalidSalePrice, match="sold_price"):
            app.report_sale(user, job, bad)  # type: ignore[arg-type]
    with pytest.raises(JobNotFound):
        app.report_sale(other, job, 12_000)  # type: ignore[arg-type]
    app.record_outcomes([Outcome(job, error="the model could not", code="model_error")])
    with pytest.raises(SaleNotReportable):
        app.report_sale(user, job, 12_000)  # type: ignore[arg-type]


def test_fleet_rows_carry_their_sale_prices_and_a_bad_one_is_named(app: CarpriceApp) -> None:
    user = _user(app)
    rows = [{**CAR, "sold_price": 9_000}, {**CAR, "sold_price": None}, dict(CAR)]
    batch = app.request_batch(user, "cheap", rows, "json")  # type: ignore[arg-type]
    jobs = [app.job(j) for j in _batch_jobs(app, batch.batch_id, 3)]
    assert [j.sold_price for j in jobs] == [9_000.0, None, None]
    with pytest.raises(InvalidBatch) as refused:
        app.request_batch(user, "cheap", [dict(CAR), {**CAR, "sold_price": "twelve"}],  # type: ignore[arg-type]
                          "json")
    assert list(refused.value.rows) == [1] and "sold_price" in refused.value.rows[1]


def _batch_jobs(app: CarpriceApp, batch_id: object, rows: int) -> list[object]:
    from uuid import uuid5

    return [uuid5(batch_id, str(i)) for i in range(rows)]  # type: ignore[arg-type]


def test_a_csv_sold_price_column_is_read_and_a_blank_cell_is_not_a_sale() -> None:
    text = ("symboling,CarName,fueltype,aspiration,doornumber,carbody,drivewheel,enginelocation,"
            "wheelbase,carlength,carwidth,carheight,curbweight,enginetype,cylindernumber,enginesize,"
            "fuelsystem,boreratio,stroke,compressionratio,horsepower,peakrpm,citympg,highwaympg,"
            "sold_price\n"
            + "3,alfa-romero giulia,gas,std,two,convertible,rwd,front,88.6,168.8,64.1,48.8,2548,"
              "dohc,four,130,mpfi,3.47,2.68,9,111,5000,21,27,13495\n"
            + "3,alfa-romero giulia,gas,std,two,convertible,rwd,front,88.6,168.8,64.1,48.8,2548,"
              "dohc,four,130,mpfi,3.47,2.68,9,111,5000,21,27,\n")
    cars = cars_from_csv(text)
    assert [c["sold_price"] for c in cars] == [13495, None]


def test_the_intervals() -> None:
    assert wilson(0, 0) is None and mean_interval(1.0, 1.0, 1) is None
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert math.isclose(low, 0.4902, abs_tol=1e-3) and math.isclose(high, 0.9433, abs_tol=1e-3)
    assert math.isclose(wilson(10, 10)[1], 1.0)  # type: ignore[index]  # never past 1
    low, high = mean_interval(1000.0, 400.0, 16)  # type: ignore[misc]
    assert math.isclose(low, 1000 - 1.96 * 100, abs_tol=0.1)
    assert math.isclose(high, 1000 + 1.96 * 100, abs_tol=0.1)
