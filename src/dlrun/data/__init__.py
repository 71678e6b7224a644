"""The dataset registry: `data.name` -> loader (built in, or a plug-in's: `dlrun.plugins`). Loaders import
their heavy modules lazily."""

from __future__ import annotations

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


def load(data_config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Load the dataset a `data` section names, and check it is fit to train on."""
    if data_config.name not in DATASETS and data_config.name in plugins.available("datasets"):
        loader = plugins.load("datasets", data_config.name, DATASETS).worker
    else:
        loader = registry.lookup(DATASETS, data_config.name, "dataset")
    loaded = loader(data_config, seed)
    _check_finite(loaded)
    return loaded


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
