"""`carprice train --data FILE.csv`: an operator's data, checked whole like a fleet batch, and
the card noting the data's sha256, file name and row count."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_registry.features import DATASET_DIR, DATASET_FILE, CsvProblem, training_data
from tests import REPO_ROOT

LINES = (DATASET_DIR / DATASET_FILE).read_text().splitlines()


def _csv(tmp_path: Path, rows: list[str], name: str = "cars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([LINES[0], *rows]) + "\n")
    return path


def _broken(line: str, column: str, value: str) -> str:
    cells = line.split(",")
    cells[LINES[0].split(",").index(column)] = value
    return ",".join(cells)


def test_a_good_file_gives_the_cars_and_its_sha256(tmp_path: Path) -> None:
    path = _csv(tmp_path, LINES[1:41])
    x, y, digest = training_data(path)
    assert len(x) == len(y) == 40 and (y > 0).all()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {"brand", "model", "horsepower"} <= set(x.columns)


def test_every_bad_row_is_listed_at_once(tmp_path: Path) -> None:
    rows = LINES[1:41]
    rows[0] = _broken(rows[0], "horsepower", "lots")
    rows[3] = _broken(rows[3], "price", "-5")
    rows[7] = _broken(rows[7], "fueltype", "")
    with pytest.raises(CsvProblem) as refused:
        training_data(_csv(tmp_path, rows))
    text = str(refused.value)
    assert "3 invalid rows, nothing was trained" in text
    assert "row 0: horsepower: not a number ('lots')" in text
    assert "row 3: price: must be above 0" in text and "row 7: fueltype: empty" in text


def test_missing_columns_and_too_few_cars_are_named(tmp_path: Path) -> None:
    header = LINES[0].replace(",horsepower", "")
    path = tmp_path / "narrow.csv"
    path.write_text(header + "\n")
    with pytest.raises(CsvProblem, match="missing columns: horsepower"):
        training_data(path)
    with pytest.raises(CsvProblem, match="5 cars; training needs at least 20"):
        training_data(_csv(tmp_path, LINES[1:6]))


def _train(tmp_path: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODEL_REGISTRY_DIR": str(tmp_path / "registry"), "CARPRICE_TRAIN_CV": "2x1",
           "CARPRICE_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "cli.main", "train", "--data", str(data),  # noqa: S603
                           "--model", "linear_regression"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_data_registers_a_version_whose_card_names_its_data(tmp_path: Path) -> None:
    bad = LINES[1:41]
    bad[2] = _broken(bad[2], "enginesize", "big")
    refused = _train(tmp_path, _csv(tmp_path, bad, "bad.csv"))
    assert refused.returncode == 1 and "row 2: enginesize" in refused.stdout + refused.stderr
    assert not (tmp_path / "registry" / "linear_regression").exists()  # nothing trained

    data = _csv(tmp_path, LINES[1:61], "dealer.csv")
    done = _train(tmp_path, data)
    assert done.returncode == 0, done.stdout + done.stderr
    card = json.loads(next((tmp_path / "registry" / "linear_regression").glob("v*/card.json")).read_text())
    assert card["training_rows"] == 60 and card["data_file"] == "dealer.csv"
    assert card["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert card["data_sha256"] in done.stdout
