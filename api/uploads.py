"""Fleet uploads read as streams, off the event loop, stopping at the row cap.

A batch body (up to 16 MiB) is spooled as it arrives (memory up to SPOOL_IN_MEMORY, then a
temporary file) and parsed in a worker thread, a row at a time: a body of millions of tiny
rows costs neither the API's memory nor its event loop, and is refused as soon as the row
past the cap is read. JSON is read with ijson's event stream, which also refuses nesting
deeper than a car can have before it is built.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

import ijson

from domain.batch import MAX_ROWS
from model_registry.features import CsvProblem, cars_from_csv

SPOOL_IN_MEMORY = 1024 * 1024


class UploadProblem(ValueError):
    """An upload that cannot be read as cars; the message starts with the field at fault."""


async def spool(chunks: AsyncIterator[bytes]) -> IO[bytes]:
    """The body in a spooled temporary file, rewound (the caller closes it)."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    async for chunk in chunks:
        file.write(chunk)
    file.seek(0)
    return file


def csv_cars(file: IO[bytes], max_rows: int = MAX_ROWS) -> list[dict[str, object]]:
    """The cars of an uploaded CSV, read line by line (UTF-8, with or without a BOM)."""
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        return cars_from_csv(text, max_rows)
    except UnicodeDecodeError:
        raise UploadProblem("file: the CSV must be UTF-8 text") from None
    except (CsvProblem, csv.Error) as exc:
        raise UploadProblem(f"file: {exc}") from None
    finally:
        text.detach()


def json_cars(file: IO[bytes], max_rows: int = MAX_ROWS) -> tuple[object, list[object]]:
    """(model_name, cars) of a JSON batch body, read event by event.

    ijson's prefix-free events: its prefixes would cost time quadratic in the nesting depth."""
    model: object = None
    cars: list[object] = []
    car: dict[str, Any] | None = None
    top_key: str | None = None  # the key of the top-level object being read
    key: str | None = None  # the key inside a car
    depth = 0
    try:
        for event, value in ijson.basic_parse(file, use_float=True):
            if event in ("start_map", "start_array"):
                depth += 1
                if depth == 3 and top_key == "cars" and event == "start_map":
                    if len(cars) >= max_rows:
                        raise UploadProblem(f"cars: at most {max_rows} cars in one batch")
                    car = {}
                elif depth >= 3:
                    raise UploadProblem(f"cars[{len(cars)}]: each car is an object of numbers "
                                        "and text" if top_key == "cars" else
                                        f"{top_key}: nested deeper than a batch can be")
            elif event in ("end_map", "end_array"):
                depth -= 1
                if depth == 2 and car is not None:
                    cars.append(car)
                    car = None
            elif event == "map_key":
                if depth == 1:
                    top_key = value
                else:
                    key = value
            elif depth == 1 and top_key == "model_name":
                model = value
            elif depth == 3 and car is not None:
                car[str(key)] = value
            elif depth == 2 and top_key == "cars":
                raise UploadProblem(f"cars[{len(cars)}]: each car is an object of numbers and text")
    except ijson.JSONError as exc:
        raise UploadProblem(f"body: not valid JSON ({str(exc)[:100]})") from None
    if depth:
        raise UploadProblem("body: the JSON ends too soon")
    return model, cars
