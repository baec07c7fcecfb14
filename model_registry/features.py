"""The 25 features the API accepts, and how they are read from the dataset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

DATASET_FILE = "CarPrice_Assignment.csv"
DATASET_DIR = Path(__file__).resolve().parent / "dataset"  # shipped as package data
DATASET_SHA256 = "2c78d99359a34cb6c64a97f276c1b6ea0532197b9b950b4521f65c0d9efcbc2b"
TARGET = "price"

NUMERIC = [
    "symboling", "wheelbase", "carlength", "carwidth", "carheight", "curbweight",
    "enginesize", "boreratio", "stroke", "compressionratio", "horsepower", "peakrpm",
    "citympg", "highwaympg",
]
CATEGORICAL = [
    "fueltype", "aspiration", "doornumber", "carbody", "drivewheel", "enginelocation",
    "enginetype", "cylindernumber", "fuelsystem", "brand",
]
# `model` is accepted (old clients send it) but the dataset's model names were
# invented for the Kaggle version, so no pipeline learns from it.
FREE_TEXT = ["model"]

# The order the old UI sends them in.
FEATURES = [
    "symboling", "fueltype", "aspiration", "doornumber", "carbody", "drivewheel",
    "enginelocation", "wheelbase", "carlength", "carwidth", "carheight", "curbweight",
    "enginetype", "cylindernumber", "enginesize", "fuelsystem", "boreratio", "stroke",
    "compressionratio", "horsepower", "peakrpm", "citympg", "highwaympg", "brand", "model",
]

# Typos of the dataset's CarName brands (see dataset/README.md).
BRAND_ALIASES = {
    "maxda": "mazda",
    "porcshce": "porsche",
    "toyouta": "toyota",
    "vokswagen": "volkswagen",
    "vw": "volkswagen",
}


# Cars as columns: feature -> its values, one per car. Serving reads them this way: building a
# DataFrame of a few cars and reading its columns back cost more than the models' arithmetic.
Cars = Mapping[str, Sequence[Any]]


def columns_of(cars: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Cars (feature -> value each) as columns of the 25 features (None where one is missing,
    as a frame has NaN)."""
    return {name: [car.get(name) for car in cars] for name in FEATURES}


def frame_of(cars: pd.DataFrame | Cars) -> pd.DataFrame:
    """Cars as the frame scikit-learn's pipelines take."""
    return cars if isinstance(cars, pd.DataFrame) else pd.DataFrame(cars, columns=FEATURES)


def normalise_brand(brand: str) -> str:
    """Lower-case, trimmed brand with the dataset's typos corrected."""
    b = str(brand).strip().lower()
    return BRAND_ALIASES.get(b, b)


def split_car_name(car_name: str) -> tuple[str, str]:
    """'alfa-romero giulia' -> ('alfa-romero', 'giulia'); the brand normalised."""
    brand, _, model = str(car_name).strip().partition(" ")
    return normalise_brand(brand), model.strip().lower() or "unknown"


def frame_from_dataset(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The 25 API features and the target from the dataset's columns."""
    names = raw["CarName"].map(split_car_name)
    x = raw.drop(columns=["car_ID", "CarName", TARGET]).copy()
    x["brand"] = [b for b, _ in names]
    x["model"] = [m for _, m in names]
    return x[FEATURES], raw[TARGET].astype(float)


def load_dataset(data_dir: Path | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Read the dataset CSV from `data_dir` (default: the one shipped with the package)."""
    return frame_from_dataset(pd.read_csv((data_dir or DATASET_DIR) / DATASET_FILE))


class CsvProblem(ValueError):
    """A CSV that cannot be read as cars (the message names what is wrong)."""


MIN_TRAINING_ROWS = 20  # fewer cars cannot be cross-validated in 5 folds with any meaning


def training_data(path: Path) -> tuple[pd.DataFrame, pd.Series, str]:
    """(features, prices, the file's sha256) of an operator's training CSV with the dataset's
    columns, checked like a fleet batch: one CsvProblem lists every bad row (0-based), and
    nothing is trained from a file with any."""
    import hashlib
    import io

    raw_bytes = path.read_bytes()
    try:
        raw = pd.read_csv(io.BytesIO(raw_bytes), dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CsvProblem(f"{path.name}: not a CSV file: {exc}"[:300]) from None
    needed = ["CarName", TARGET, *(f for f in FEATURES if f not in ("brand", "model"))]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise CsvProblem(f"{path.name}: missing columns: {', '.join(missing)} (the dataset's columns)")
    if len(raw) < MIN_TRAINING_ROWS:
        raise CsvProblem(f"{path.name}: {len(raw)} cars; training needs at least {MIN_TRAINING_ROWS}")
    bad: dict[int, list[str]] = {}
    numbers = {c: pd.to_numeric(raw[c].str.strip(), errors="coerce") for c in [*NUMERIC, TARGET]}
    for c, values in numbers.items():
        for i in values.index[~values.map(lambda v: pd.notna(v) and abs(v) != float("inf"))]:
            bad.setdefault(int(i), []).append(f"{c}: not a number ({raw.at[i, c][:20]!r})")
    for i in numbers[TARGET].index[numbers[TARGET] <= 0]:
        bad.setdefault(int(i), []).append(f"{TARGET}: must be above 0")
    for c in ["CarName", *(f for f in CATEGORICAL if f != "brand")]:
        for i in raw.index[raw[c].str.strip() == ""]:
            bad.setdefault(int(i), []).append(f"{c}: empty")
    if bad:
        listed = "; ".join(f"row {i}: " + ", ".join(e) for i, e in sorted(bad.items())[:50])
        more = f" (and {len(bad) - 50} more rows)" if len(bad) > 50 else ""
        raise CsvProblem(f"{path.name}: {len(bad)} invalid rows, nothing was trained: {listed}{more}")
    for c, values in numbers.items():
        raw[c] = values
    if "car_ID" not in raw.columns:
        raw["car_ID"] = range(len(raw))
    x, y = frame_from_dataset(raw)
    return x, y, hashlib.sha256(raw_bytes).hexdigest()


def cars_from_csv(text: str | Iterable[str], max_rows: int | None = None) -> list[dict[str, object]]:
    """The cars of a CSV with the dataset's columns (`CarName` is split into brand and model as
    the old clients split it; `car_ID` and `price` are ignored) or the API's 25 features, and
    an optional `sold_price` column (what the car sold for; blank when it has not).
    Numbers are read as numbers where they parse; anything else is left for validation.
    `text` may be a stream of lines (read as it goes); reading stops past `max_rows` cars."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text) if isinstance(text, str) else text)
    columns = set(reader.fieldnames or [])
    has_name = "CarName" in columns
    needed = [f for f in FEATURES if f not in FREE_TEXT and not (has_name and f == "brand")]
    missing = [f for f in needed if f not in columns]
    if missing:
        raise CsvProblem(f"missing columns: {', '.join(missing)} (the dataset's columns, with "
                         "CarName, or the 25 features, with brand)")
    cars: list[dict[str, object]] = []
    for row in reader:
        if max_rows is not None and len(cars) >= max_rows:
            raise CsvProblem(f"at most {max_rows} cars in one batch")
        car: dict[str, object] = {}
        if has_name:
            brand, _, model = str(row.get("CarName") or "").strip().partition(" ")
            car["brand"], car["model"] = brand, model.strip()
        for f in FEATURES:
            if f in row and not (has_name and f in ("brand", "model")):
                car[f] = _number(row[f]) if f in NUMERIC else row[f]
        car.setdefault("model", "")
        if "sold_price" in row:  # what the car sold for, when it did: reported on its job
            car["sold_price"] = _number(row["sold_price"]) if (row["sold_price"] or "").strip() else None
        cars.append(car)
    return cars


def _number(raw: str | None) -> object:
    text = (raw or "").strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return raw
