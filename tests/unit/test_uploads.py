"""Fleet uploads are read as streams and stop at the row cap (the abuse probe's 16 MiB bodies)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest

from api.csv_text import csv_text
from api.schemas import EXAMPLE_CAR as CAR
from api.uploads import UploadProblem, csv_cars, json_cars
from model_registry.features import FEATURES

SIXTEEN_MIB = 16 * 1024 * 1024


class Counted(io.BytesIO):
    """A body that counts how much of it the parser read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def read1(self, size: int = -1) -> bytes:
        chunk = super().read1(size)
        self.taken += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self.taken += n
        return n


def test_a_csv_of_millions_of_empty_rows_is_refused_after_reading_a_sliver_of_it() -> None:
    header = ",".join(FEATURES).encode() + b"\n"
    body = Counted(header + b"," * (len(FEATURES) - 1) * 0 + b",,\n" * (SIXTEEN_MIB // 3))
    with pytest.raises(UploadProblem, match="at most 10 cars"):
        csv_cars(body, max_rows=10)
    assert body.taken < SIXTEEN_MIB // 16  # it stopped near the cap, not at the end


def test_a_json_list_of_millions_of_empty_objects_is_refused_after_reading_a_sliver_of_it() -> None:
    body = Counted(b'{"model_name":"x","cars":[' + b"{}," * (SIXTEEN_MIB // 3) + b"{}]}")
    with pytest.raises(UploadProblem, match="cars: at most 100 cars"):
        json_cars(body, max_rows=100)
    assert body.taken < SIXTEEN_MIB // 16


@pytest.mark.parametrize("body", [
    b'{"model_name":"x","cars":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    b'{"model_name":"x","cars":[{"horsepower":' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}]}",
    b'{"model_name":"x","cars":[{"horsepower":{"a":{"b":1}}}]}',
])
def test_nesting_deeper_than_a_car_is_refused_naming_the_field(body: bytes) -> None:
    with pytest.raises(UploadProblem, match=r"cars\[0\]: each car is an object"):
        json_cars(Counted(body))
    with pytest.raises(UploadProblem, match="deep: nested deeper"):
        json_cars(Counted(b'{"deep":' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}"))


def test_json_and_csv_batches_read_as_the_cars_they_hold() -> None:
    cars = [CAR, {**CAR, "horsepower": 200, "brand": "bmw"}]
    model, read = json_cars(io.BytesIO(orjson.dumps({"model_name": "cheap", "cars": cars,
                                                     "note": {"kept": "out"}})))
    assert (model, read) == ("cheap", cars)
    table = csv_text(FEATURES, [[car[f] for f in FEATURES] for car in cars]).encode("utf-8")
    assert csv_cars(io.BytesIO(b"\xef\xbb\xbf" + table)) == cars  # a BOM is fine
    with pytest.raises(UploadProblem, match="file: the CSV must be UTF-8"):
        csv_cars(io.BytesIO(table.replace(b"bmw", b"\xff\xfe")))
    with pytest.raises(UploadProblem, match="body: not valid JSON"):
        json_cars(io.BytesIO(b'{"model_name": "x", "cars": [{"a": 1}'))


def test_every_csv_cell_a_spreadsheet_would_run_is_neutralised() -> None:
    text = csv_text(["a", "b", "c", "d", "e", "f", "g"],
                    [["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", -5]])
    cells = next(csv.reader(io.StringIO(text.split("\r\n", 1)[1])))
    assert cells == ["'=HYPERLINK(\"http://x\")", "'+1", "'-1+2", "'@SUM(A1)", "'\tx", "'\rx", "-5"]
