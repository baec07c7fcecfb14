"""The dataset shipped in data/ is byte-for-byte the documented one."""

import hashlib

from model_registry.features import DATASET_DIR, DATASET_FILE, DATASET_SHA256, load_dataset


def test_dataset_bytes_match_the_documented_sha256() -> None:
    data = (DATASET_DIR / DATASET_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == DATASET_SHA256
    assert DATASET_SHA256 in (DATASET_DIR / "README.md").read_text()


def test_dataset_reads_as_205_cars_with_25_features() -> None:
    x, y = load_dataset()
    assert x.shape == (205, 25)
    assert y.min() == 5118 and y.max() == 45400
    assert set(x["brand"]) >= {"mazda", "porsche", "toyota", "volkswagen", "nissan"}
    assert not set(x["brand"]) & {"maxda", "porcshce", "toyouta", "vokswagen", "vw", "Nissan"}
