"""The exploration notebook runs headless against the registry, and is committed clean."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "explore_models.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_notebook_executes_and_plots_every_model(registry, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODEL_REGISTRY_DIR", str(registry.root))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # importing streamlit sets it to Agg
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    table = next(h for h in html if "r2_mean" in h)
    for name in ("linear_regression", "gradient_boosting", "random_forest"):
        assert name in table
    # the cards shown are the test registry's (2-fold CV here, other figures than any other
    # registry's): each model's R2 mean, rounded as the notebook rounds it, is in the table
    for card in registry.champion_cards():
        r2 = round(card.metrics["r2"]["mean"], 3)
        assert f"{r2:.3f}" in table or f">{r2}<" in table, (card.name, r2)
