"""The kafka-python seam: it refuses a version it was not written for."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest


def test_an_untested_kafka_python_version_is_refused_at_import_with_what_to_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.kafka_compat as compat

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "3.1.0" if name == "kafka-python" else real(name))
    with pytest.raises(ImportError, match=r"kafka-python 3\.1\.0 is installed"):
        importlib.reload(compat)
    monkeypatch.setattr(importlib.metadata, "version", real)
    importlib.reload(compat)  # the installed, tested version imports
    assert compat.membership(object()) is None  # not a consumer: no group to tell of
