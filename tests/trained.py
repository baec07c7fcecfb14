"""The test registry (the three models, 2-fold CV), trained once per version of the training
code, the dataset and the libraries, and kept under .pytest_cache between runs: both CI passes
(and a developer's next `make test`) copy it instead of training again (about 25 s, 45 s on a
busy machine, per session).

    .venv/bin/python -m tests.trained     # train it now (CI does, while the linters run)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from tests import REPO_ROOT

CACHE = REPO_ROOT / ".pytest_cache" / "carprice-registry"
# what the trained models depend on: the training code and data, and the types it builds on
SOURCES = ("model_registry", "domain")
LIBRARIES = ("scikit-learn", "mapie", "numpy", "pandas", "joblib")
SPLITS, REPEATS = 2, 1


def key() -> str:
    """A digest of everything the trained registry depends on."""
    digest = hashlib.sha256(f"{SPLITS}x{REPEATS}".encode())
    for lib in LIBRARIES:
        digest.update(f"{lib}=={metadata.version(lib)}\n".encode())
    for top in SOURCES:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def trained_registry() -> Path:
    """The directory of a registry trained from this code: cached, or trained now (into a
    temporary directory renamed into place, so concurrent runs never see half of one)."""
    from model_registry.store import Registry
    from model_registry.training import train_all

    done = CACHE / key()
    if done.is_dir():
        return done
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=CACHE, prefix=".training-"))
    work.chmod(0o755)  # as a directory made by hand would be
    try:
        train_all(None, Registry(work), n_splits=SPLITS, n_repeats=REPEATS)
        os.rename(work, done)
    except OSError:
        if not done.is_dir():  # not another run finishing first: a real failure
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for old in CACHE.iterdir():  # registries of older code
        if old.name != done.name and not old.name.startswith(".training-"):
            shutil.rmtree(old, ignore_errors=True)
    return done


if __name__ == "__main__":
    print(trained_registry())  # noqa: T201 - the command prints where it is
