"""The OpenAPI document: every route described, every request and response model with an example."""

from __future__ import annotations

from api.main import create_api


def test_every_route_has_a_description_and_every_schema_an_example() -> None:
    spec = create_api().openapi()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert op.get("description") or op.get("summary"), f"{method} {path}"
            assert op.get("description"), f"{method} {path} has no docstring description"
    ours = {n: s for n, s in spec["components"]["schemas"].items()
            if n.endswith(("Public", "Create", "Update", "Query")) or n == "SignIn"}
    missing = [n for n, s in ours.items() if "examples" not in s]
    assert ours and missing == []
    assert spec["paths"]["/api/v1/sign_in"]["post"]["responses"]["200"]
