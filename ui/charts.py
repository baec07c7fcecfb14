"""The dashboard's charts (Altair). Every chart that compares models names them on an axis,
says what its colours mean, and orders the models the same way (MODEL_ORDER)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

MONEY_AXIS = alt.Axis(format="$,.0f")


def range_chart(price: float, interval: dict[str, float]) -> alt.LayerChart:
    """A price as a point on its range."""
    band = pd.DataFrame([{"low": interval["low"], "high": interval["high"], "price": price, "y": ""}])
    base = alt.Chart(band).encode(y=alt.Y("y:N", title=None))
    axis = alt.X("low:Q", title="price", scale=alt.Scale(zero=False), axis=MONEY_AXIS)
    return (base.mark_rule(strokeWidth=8, opacity=0.35).encode(x=axis, x2="high:Q")
            + base.mark_point(size=120, filled=True).encode(x="price:Q")).properties(height=70)


def explanation_chart(explanation: dict[str, Any]) -> alt.Chart:
    """What each feature adds to or takes from the price."""
    rows = pd.DataFrame([{"feature": f"{c['feature']} = {c['value']}", "effect": c["effect"],
                          "direction": "raises" if c["effect"] > 0 else "lowers"}
                         for c in explanation["contributions"][:12]])
    return alt.Chart(rows).mark_bar().encode(
        x=alt.X("effect:Q", title="effect on the price", axis=MONEY_AXIS),
        y=alt.Y("feature:N", sort=None, title=None),
        color=alt.Color("direction:N", title="the feature", scale=alt.Scale(
            domain=["raises", "lowers"], range=["#2e7d32", "#c62828"])),
    ).properties(height=28 * len(rows) + 30)


def balance_chart(entries: pd.DataFrame) -> alt.Chart:
    """The balance over time: steps (a balance holds until the next entry)."""
    return alt.Chart(entries[["time", "balance", "type"]]).mark_line(
        interpolate="step-after", point=True).encode(
        x=alt.X("time:T", title=None, axis=alt.Axis(format="%b %d %H:%M:%S", labelAngle=-30)),
        y=alt.Y("balance:Q", title="credits"),
        tooltip=[alt.Tooltip("time:T", format="%Y-%m-%d %H:%M:%S"), "type", "balance"],
    ).properties(height=260)


SPEND_KINDS = ["spent", "on hold", "given back"]


def spend_chart(spend: list[dict[str, Any]]) -> alt.Chart:
    """Per model, the credits spent, on hold and given back (as the API bills them)."""
    bars = pd.DataFrame([{"model": s["model"], "credits": kind, "amount": s[key]}
                         for s in spend for kind, key in zip(SPEND_KINDS, ("spent", "on_hold",
                                                                            "given_back"),
                                                              strict=True) if s[key] > 0])
    return alt.Chart(bars).mark_bar().encode(
        x=alt.X("model:N", title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("amount:Q", title="credits"),
        color=alt.Color("credits:N", title=None, scale=alt.Scale(
            domain=SPEND_KINDS, range=["#1f77b4", "#ffb74d", "#b0bec5"])),
        tooltip=["model", "credits", "amount"]).properties(height=240)


def r2_chart(table: pd.DataFrame, order: list[str]) -> alt.LayerChart:
    """Cross-validated R² per model (a bar each, named on the axis), with ±1 std."""
    low = max(0.0, float((table["R²"] - 2 * table["R² std"]).min()))
    base = alt.Chart(table).encode(y=alt.Y("model:N", title=None, sort=order))
    bars = base.mark_bar().encode(
        x=alt.X("R²:Q", scale=alt.Scale(domain=[round(low, 2), 1.0]), title="R² (higher is better)"),
        color=alt.Color("model:N", sort=order, title="model"),
        tooltip=["model", alt.Tooltip("R²:Q", format=".3f"), alt.Tooltip("R² std:Q", format=".3f")])
    spread = base.mark_rule(color="black").encode(x="lo:Q", x2="hi:Q").transform_calculate(
        lo="datum['R²'] - datum['R² std']", hi="datum['R²'] + datum['R² std']")
    return (bars + spread).properties(height=40 * len(table) + 40)


def errors_chart(table: pd.DataFrame, order: list[str]) -> alt.Chart:
    """RMSE and MAE per model in dollars, the models in the same order as r2_chart."""
    errors = table.melt(id_vars="model", value_vars=["RMSE", "MAE"], var_name="metric",
                        value_name="dollars")
    return alt.Chart(errors).mark_bar().encode(
        y=alt.Y("model:N", title=None, sort=order), yOffset="metric:N",
        x=alt.X("dollars:Q", title="error (lower is better)", axis=MONEY_AXIS),
        color=alt.Color("metric:N", title="error"),
        tooltip=["model", "metric", alt.Tooltip("dollars:Q", format="$,.0f")],
    ).properties(height=60 * len(table) + 40)


def oof_chart(points: pd.DataFrame) -> alt.LayerChart:
    """Out-of-fold predictions against the actual prices, with their ranges and the diagonal."""
    base = alt.Chart(points).encode(x=alt.X("actual:Q", title="actual price", axis=MONEY_AXIS))
    chart: alt.Chart | alt.LayerChart = base.mark_circle(size=40).encode(
        y=alt.Y("predicted:Q", title="predicted", axis=MONEY_AXIS))
    if points["low"].notna().all():
        chart = base.mark_rule(opacity=0.3).encode(y="low:Q", y2="high:Q") + chart
    line = alt.Chart(pd.DataFrame({"v": [points["actual"].min(), points["actual"].max()]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="v:Q", y="v:Q")
    layered: alt.LayerChart = (chart + line).properties(height=380)
    return layered
