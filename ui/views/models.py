"""Comparing the models: cross-validated metrics, prices, predicted against actual."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui import charts
from ui.components import api, call


def _metric(card: dict[str, Any], name: str) -> float | None:
    value = card["metrics"].get(name, {}).get("mean")
    return None if value is None else float(value)


def models_table(cards: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per model, cheapest first (the order of every chart on the page)."""
    return pd.DataFrame([{"model": c["model_name"], "champion": f"v{c['version']}", "price": c["price"],
                          "explain +": c.get("explain_price") or None,
                          "R²": _metric(c, "r2"), "R² std": c["metrics"]["r2"].get("std", 0.0),
                          "RMSE": _metric(c, "rmse"), "MAE": _metric(c, "mae"),
                          "range coverage": _metric(c, "coverage"),
                          "range width": _metric(c, "width")} for c in cards]
                        ).sort_values(["price", "model"], kind="stable").reset_index(drop=True)


def models() -> None:
    """The models side by side."""
    st.title("Models")
    listed = call(api().models)
    cards = [call(api().card, m["model_name"]) for m in listed] if listed is not None else None
    if cards is None or any(c is None for c in cards):
        return
    found = [c for c in cards if c is not None]
    table = models_table(found)
    order = table["model"].tolist()
    dollars = st.column_config.NumberColumn(format="dollar")
    st.dataframe(table.round({"R²": 3, "R² std": 3, "range coverage": 3}), hide_index=True,
                 column_config={"RMSE": dollars, "MAE": dollars, "range width": dollars,
                                "price": st.column_config.NumberColumn("price (credits)"),
                                "explain +": st.column_config.NumberColumn("explain + (credits)")})
    _live(found)
    _challengers(found)
    _drift(found)
    left, right = st.columns(2)
    left.subheader("Cross-validated R²")
    left.altair_chart(charts.r2_chart(table, order))
    right.subheader("Errors in dollars")
    right.altair_chart(charts.errors_chart(table, order))
    st.subheader("Predicted vs actual (out of fold), with the 80 % ranges")
    points = pd.DataFrame([{"model": c["model_name"], "actual": a, "predicted": p,
                            "low": r[0] if r else None, "high": r[1] if r else None}
                           for c in found
                           for (a, p), r in zip(c["oof"], c.get("oof_range") or [None] * len(c["oof"]),
                                                strict=True)])
    if not points.empty:
        chosen = st.selectbox("Model", order, key="oof_model")
        st.altair_chart(charts.oof_chart(points[points["model"] == chosen]))
    if found:
        st.caption(f"{found[0]['cv']['n_splits']}-fold CV repeated {found[0]['cv']['n_repeats']} "
                   f"times on {found[0]['training_rows']} cars.")


def _interval(ci: list[float] | None, scale: float = 1.0, digits: int = 0) -> str:
    return "" if not ci else f"{ci[0] * scale:,.{digits}f} to {ci[1] * scale:,.{digits}f}"


def live_table(cards: list[dict[str, Any]], live: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per model version with sale prices reported: its live errors and range coverage
    (95 % intervals), beside its card's cross-validated MAE and coverage."""
    rows = []
    for c in cards:
        for v in (live.get(c["model_name"]) or {}).get("versions", []):
            same = str(v["version"]) == str(c.get("version"))
            rows.append({
                "model": c["model_name"], "version": v["version"], "reports": v["reports"],
                "live MAE": v["mae"], "live MAE 95 %": _interval(v["mae_ci"]),
                "CV MAE": _metric(c, "mae") if same else None,
                "live MAPE %": None if v["mape"] is None else round(100 * v["mape"], 1),
                "live MAPE 95 %": _interval(v["mape_ci"], 100, 1),
                "live coverage": v["coverage"], "coverage 95 %": _interval(v["coverage_ci"], 1, 2),
                "CV coverage": _metric(c, "coverage") if same else None})
    return pd.DataFrame(rows)


def _live(cards: list[dict[str, Any]]) -> None:
    """Live accuracy: the reported sale prices against each version's prices."""
    st.subheader("Live accuracy: the prices cars actually sold for")
    live = {c["model_name"]: call(api().live, c["model_name"]) or {} for c in cards}
    table = live_table(cards, live)
    if table.empty:
        st.caption("No sale prices reported yet: POST /api/v1/predict/{job_id}/outcome with the "
                   "price a car sold for, or a sold_price column in a fleet CSV.")
        return
    dollars = st.column_config.NumberColumn(format="dollar")
    st.dataframe(table.round({"live coverage": 3, "CV coverage": 3}), hide_index=True,
                 column_config={"live MAE": dollars, "CV MAE": dollars})
    st.caption("Every user's reports (the latest per job), finished jobs only; 95 % intervals: "
               "normal for the mean errors, Wilson for the coverage of the 80 % range.")


def challengers_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per challenger and the champion it was compared with, on the same cars: how far
    apart their prices are and, where sale prices came back, both MAEs and coverages."""
    rows = []
    for r in reports:
        cards = {c["version"]: c for c in [r["champion"], *r["challengers"]] if c}
        for x in r["comparisons"]:
            card = cards.get(x["version"]) or {}
            rows.append({
                "model": r["model_name"], "challenger": f"v{x['version']}",
                "against": f"v{x['champion_version']}", "CV R²": card.get("cv_r2"),
                "trained on": card.get("data_file") or "shipped dataset",
                "shadow jobs": x["shadowed"], "failed": x["failed"],
                "median |difference|": x["median_abs_difference"],
                "median difference": x["median_difference"], "sale reports": x["reports"],
                "challenger MAE": x["mae"], "champion MAE": x["champion_mae"],
                "challenger coverage": x["coverage"], "champion coverage": x["champion_coverage"]})
    return pd.DataFrame(rows)


def _challengers(cards: list[dict[str, Any]]) -> None:
    """Challengers priced in the shadow against their champion, on the same live cars."""
    st.subheader("Challengers: priced in the shadow beside the champion")
    reports = [r for c in cards if (r := call(api().challengers, c["model_name"])) is not None]
    waiting = [f"{r['model_name']} v{c['version']}" for r in reports for c in r["challengers"]]
    table = challengers_table(reports)
    if table.empty:
        st.caption("No challenger has priced in the shadow yet" + (
            f" ({', '.join(waiting)} waiting for jobs)." if waiting else
            ": `carprice train` registers new versions as challengers; `carprice models promote` "
            "makes one the champion."))
        return
    dollars = st.column_config.NumberColumn(format="dollar")
    st.dataframe(table.round({"CV R²": 3, "challenger coverage": 3, "champion coverage": 3}),
                 hide_index=True,
                 column_config=dict.fromkeys(("median |difference|", "median difference",
                                              "challenger MAE", "champion MAE"), dollars))
    share = reports[0]["shadow_share"] if reports else 0
    st.caption(f"Each challenger prices {share:.0%} of the paid jobs of its model in the shadow: "
               "unbilled, unseen by their owners, never delaying them. MAE and coverage on the "
               "shadowed cars whose sale prices were reported.")


def drift_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per model: how many recent cars, the most drifted feature, the drifting ones."""
    rows = []
    for r in reports:
        top = r["features"][0] if r["features"] else None
        rows.append({"model": r["model_name"], "recent cars": r["cars"],
                     "most drifted": top["feature"] if top else "", "its PSI": top["psi"] if top else None,
                     "above threshold": ", ".join(r["drifting"]),
                     "unseen categories": max((f["unseen_share"] for f in r["features"]), default=0.0)})
    return pd.DataFrame(rows)


def _drift(cards: list[dict[str, Any]]) -> None:
    """Drift: each model's recent cars against its training data."""
    st.subheader("Drift: the cars priced lately against the training data")
    reports = [r for c in cards if (r := call(api().drift, c["model_name"])) is not None]
    if not reports:
        return
    for r in reports:
        if r["drifting"]:
            st.warning(f"{r['model_name']}: its last {r['cars']} cars differ from its training data on "
                       f"{', '.join(r['drifting'])} (PSI above {r['threshold']}); its prices there "
                       "are less certain than its card says.")
    st.dataframe(drift_table(reports).round({"its PSI": 3, "unseen categories": 3}), hide_index=True)
    st.caption("Population stability index per feature, training data against each model's last "
               f"{reports[0]['window']} finished jobs: under 0.1 stable, above "
               f"{reports[0]['threshold']} drift (flagged from {reports[0].get('min_cars', 1)} cars on).")
