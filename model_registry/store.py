"""The artifact store: one folder per model version, a joblib artifact and its card.

Loading checks the artifact's sha256 against its card before unpickling it, so a
tampered or corrupted artifact is refused instead of being executed.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import joblib
import sklearn

from domain.catalog import ModelFingerprint
from infra.memory import give_back
from infra.versions import minor
from model_registry.card import ModelCard
from model_registry.prices import PriceList

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from model_registry.pricing import PriceModel

    # a version as registered: a PriceModel (point, range, explanations), or a scikit-learn
    # pipeline for the versions trained before ranges existed
    Servable: TypeAlias = PriceModel | Pipeline

ARTIFACT = "model.joblib"
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
CARD = "card.json"


class RegistryError(RuntimeError):
    """A model or version is missing, or an artifact fails its integrity check."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _serve_single_threaded(model: Servable) -> None:
    # Serving predicts micro-batches: a thread pool per call costs more than it saves.
    # The fitted estimator of a TransformedTargetRegressor is its `regressor_`; a
    # PriceModel holds the point pipeline and the range's fold pipelines.
    pipelines = model.pipelines() if hasattr(model, "pipelines") else [model]
    for pipeline in pipelines:
        for step in (pipeline, *getattr(pipeline, "named_steps", {}).values()):
            for est in (step, getattr(step, "regressor_", None)):
                if est is not None and hasattr(est, "n_jobs"):
                    est.n_jobs = 1


# How long a process trusts the champion it last looked up (a promotion is seen within it).
CHAMPION_TTL_SECONDS = 1.0


def _none_promoted(name: str) -> str | None:
    return None


class Registry:
    """Model cards and artifacts under one root; loaded models cached per process.

    Which version of a model serves paid jobs is its champion: the version last promoted (its
    release history in the event store, looked up through `follow`), or, before any promotion,
    the latest version that did not enter as a challenger. Versions newer than the champion
    are its challengers.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.prices = PriceList(self.root)
        self._cache: dict[tuple[str, str], Servable] = {}
        self._cards: dict[tuple[str, str], ModelCard] = {}  # a version's card never changes
        self._lock = threading.Lock()
        self._promoted: Callable[[str], str | None] = _none_promoted
        self._champions: dict[str, tuple[float, str | None]] = {}

    def follow(self, promoted: Callable[[str], str | None]) -> Callable[[], None]:
        """Look promoted champions up with `promoted` (model name -> version, or None before a
        first promotion), each trusted for CHAMPION_TTL_SECONDS. Returns what stops it (when
        the store behind it closes), unless another lookup has taken over meanwhile."""
        self._promoted = promoted
        self.refresh()

        def stop() -> None:
            if self._promoted == promoted:
                self._promoted = _none_promoted
                self.refresh()

        return stop

    def refresh(self) -> None:
        """Look every champion up again at its next use (after a promotion in this process)."""
        self._champions.clear()

    def _promoted_version(self, name: str) -> str | None:
        seen = self._champions.get(name)
        now = time.monotonic()
        if seen is None or now - seen[0] > CHAMPION_TTL_SECONDS:
            seen = (now, self._promoted(name))
            self._champions[name] = seen
        return seen[1]

    def champion(self, name: str) -> str:
        """The version of `name` that serves paid jobs."""
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"unknown model {name!r}")
        return self._champion_among(name, versions)

    def _champion_among(self, name: str, versions: list[str]) -> str:
        promoted = self._promoted_version(name)
        if promoted in versions:
            return str(promoted)
        entered = [v for v in versions if not self._card_of(name, v).challenger]
        return entered[-1] if entered else versions[0]

    def challengers(self, name: str) -> list[str]:
        """The versions of `name` newer than its champion, oldest first: priced in the shadow."""
        champion = int(self.champion(name))
        return [v for v in self.versions(name) if int(v) > champion]

    def _dir(self, name: str, version: str) -> Path:
        return self.root / name / f"v{version}"

    def versions(self, name: str) -> list[str]:
        """Versions of a model, oldest first."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            return []  # never a path outside the registry
        base = self.root / name
        if not base.is_dir():
            return []
        found = [p.name[1:] for p in base.iterdir() if (p / CARD).exists() and p.name[1:].isdigit()]
        return sorted(found, key=int)

    def names(self) -> list[str]:
        """Names of the registered models."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if self.versions(p.name))

    def card(self, name: str, version: str | None = None) -> ModelCard:
        """The card of a version (the champion's when none is given)."""
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"unknown model {name!r}")
        version = version or self._champion_among(name, versions)  # one listing per call
        if version not in versions:
            raise RegistryError(f"model {name!r} has no version {version!r}")
        return self._card_of(name, version)

    def _card_of(self, name: str, version: str) -> ModelCard:
        """The card of a version known to be registered (read once: it never changes)."""
        key = (name, version)
        if key not in self._cards:
            self._cards[key] = ModelCard.from_json((self._dir(name, version) / CARD).read_text())
        return self._cards[key]

    def fingerprint(self, name: str, version: str, check: bool = False) -> ModelFingerprint | None:
        """The sha256 of a version's card file and (as the card has it) of its artifact; with
        `check`, the artifact's bytes are hashed again. None: not in this registry."""
        if version not in self.versions(name):
            return None
        folder = self._dir(name, version)
        card = self.card(name, version)
        ok = None
        if check:
            path = folder / ARTIFACT
            ok = path.exists() and sha256_of(path) == card.sha256
        return ModelFingerprint(name, version, sha256_of(folder / CARD), card.sha256, ok)

    def price(self, name: str) -> int:
        """A model's price now: the price list's, or (a registry from before the list) its card's."""
        return self.prices.get().get(name) or self.card(name).price

    def champion_cards(self) -> list[ModelCard]:
        """The champion's card of every model, cheapest first."""
        return sorted((self.card(n) for n in self.names()), key=lambda c: self.price(c.name))

    def next_version(self, name: str) -> str:
        """The version number a new registration of `name` gets."""
        versions = self.versions(name)
        return str(int(versions[-1]) + 1) if versions else "1"

    def register(self, card: ModelCard, model: Servable) -> ModelCard:
        """Store a fitted model and its card; the card's sha256 is the artifact's."""
        target = self._dir(card.name, card.version)
        if target.exists():
            raise RegistryError(f"{card.name} v{card.version} is already registered")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.mkdir(parents=True)
        joblib.dump(model, tmp / ARTIFACT)
        card.sha256 = sha256_of(tmp / ARTIFACT)
        (tmp / CARD).write_text(card.to_json())
        os.replace(tmp, target)  # a version appears whole or not at all
        return card

    def load(self, name: str, version: str) -> Servable:
        """The fitted pipeline of a version, sha256-checked, in its serving form, cached in
        this process."""
        key = (name, version)
        cached = self._cache.get(key)  # no lock: a load in another thread never holds up a hit
        if cached is not None:
            return cached
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            model = self.load_as_trained(name, version)
            if hasattr(model, "serve"):
                model.serve()
                give_back()  # the trees the compiled form replaced
            self._cache[key] = model
            return model

    def load_as_trained(self, name: str, version: str) -> Servable:
        """A version's artifact as it was trained (scikit-learn and MAPIE, not compiled for
        serving), sha256-checked, not cached: what the serving form is measured against."""
        card = self.card(name, version)
        path = self._dir(name, version) / ARTIFACT
        if not path.exists():
            raise RegistryError(f"artifact of {name} v{version} is missing: {path}")
        actual = sha256_of(path)
        if actual != card.sha256:
            raise RegistryError(
                f"artifact of {name} v{version} fails its integrity check: sha256 {actual} "
                f"differs from the card's {card.sha256}; refusing to load it"
            )
        trained_with, here = minor(card.sklearn_version or "unknown"), minor(sklearn.__version__)
        if trained_with != here:
            # scikit-learn's pickles hold its private classes: another minor version may load
            # them wrong without saying so
            raise RegistryError(
                f"{name} v{version} was trained with scikit-learn {card.sklearn_version}; this "
                f"process has {sklearn.__version__}. Train it again here (`carprice train`) or "
                f"install scikit-learn {trained_with}.x")
        from sklearn.pipeline import Pipeline

        from model_registry.pricing import PriceModel

        model = joblib.load(path)  # noqa: S301 - integrity checked above
        if not isinstance(model, PriceModel | Pipeline):
            raise RegistryError(f"artifact of {name} v{version} holds a {type(model).__name__}, "
                                "not a model")
        _serve_single_threaded(model)
        return model
