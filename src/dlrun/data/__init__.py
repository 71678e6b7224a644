"""The dataset registry: `data.name` -> loader (built in, or a plug-in's: `dlrun.plugins`). Loaders import
their heavy modules lazily. `shared()`: trials started together load each data section and seed once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from dlrun import errors, plugins, registry
from dlrun.data import (
    boston_housing,
    dataset,
    digits,
    fashion_mnist,
    hdf5,
    image_directory,
    imdb,
    mnist,
    npz,
    pipeline,
    reuters,
    synthetic,
)

DATASETS = {
    "digits": digits.load,
    "synthetic": synthetic.load,
    "imdb": imdb.load,
    "reuters": reuters.load,
    "boston_housing": boston_housing.load,
    "mnist": mnist.load,
    "fashion_mnist": fashion_mnist.load,
    "image_directory": image_directory.load,
    "npz": npz.load,
    "hdf5": hdf5.load,
}


_shared: dict | None = None  # while `shared()` is open: {(the data section as JSON, seed): its Dataset}


def load(data_config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Load the dataset a `data` section names, and check it is fit to train on."""
    as_json = getattr(data_config, "model_dump_json", None)  # a plug-in's section may be no pydantic model
    shared_now = _shared
    key = (as_json(), seed) if shared_now is not None and as_json is not None else None
    if shared_now is not None and key in shared_now:
        return shared_now[key]
    if data_config.name not in DATASETS and data_config.name in plugins.available("datasets"):
        loader = plugins.load("datasets", data_config.name, DATASETS).worker
    else:
        loader = registry.lookup(DATASETS, data_config.name, "dataset")
    loaded = loader(data_config, seed)
    _check_finite(loaded)
    if shared_now is not None and key is not None:
        shared_now[key] = loaded
    return loaded


@contextlib.contextmanager
def shared() -> Iterator[None]:
    """Within it, `load` of a data section and seed loaded already returns that same Dataset (the vectorized
    sweep starts a batch of trials that differ only in learning rate and seed: one load per seed). Nothing
    that trains changes a Dataset's arrays, so its trials can share them."""
    global _shared
    outer, _shared = _shared, {} if _shared is None else _shared
    try:
        yield
    finally:
        _shared = outer


def _check_finite(loaded: dataset.Dataset) -> None:
    for name in ("train", "validation", "test"):
        arrays = loaded.split(name)
        if arrays is None or isinstance(arrays, pipeline.Pipeline):  # decoded images are finite
            continue
        for label, array in zip(("inputs", "targets"), arrays):
            if np.issubdtype(array.dtype, np.floating):
                bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
                if bad:
                    first = np.argwhere(~np.isfinite(array))[0].tolist()
                    raise errors.DataError(f"the {name} {label} contain {bad} NaN or infinite value(s), the first at index {first}")
