"""The dependency direction of CONVENTIONS.md, checked on every import of our packages."""

from __future__ import annotations

import ast

from infra.settings import REPO_ROOT

OURS = {"domain", "commands", "projections", "consumers", "api", "ui", "model_registry", "infra"}
ALLOWED = {
    "domain": set(),
    "commands": {"domain", "infra"},
    "projections": {"domain", "infra"},
    "consumers": {"commands", "projections", "model_registry", "infra", "domain"},
    "api": {"commands", "projections", "model_registry", "infra", "domain"},
    "ui": set(),
    "model_registry": {"domain", "infra"},
    # the composition root wires everything together
    "infra": OURS,
}


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (REPO_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in OURS and top != package:
                    found.add((str(path.relative_to(REPO_ROOT)), top))
    return found


def test_packages_depend_only_in_the_allowed_direction() -> None:
    violations = [
        f"{file} imports {target}"
        for package, allowed in ALLOWED.items()
        for file, target in _imports(package)
        if target not in allowed
    ]
    assert violations == []


def test_projections_only_use_the_domain_event_catalogue() -> None:
    for file, target in _imports("projections"):
        if target == "domain":
            text = (REPO_ROOT / file).read_text()
            assert "from domain.events" in text or "import domain.events" in text, file
