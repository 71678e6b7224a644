"""Boston housing prices (Keras' boston_housing.npz): 506 districts, 13 features, 404/102 as Keras splits."""

from __future__ import annotations

from dlrun import errors
from dlrun.data import dataset, keras_files, sequences

FILE = keras_files.KerasFile("boston_housing.npz", file_hash="f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5")
FEATURES = 13


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Boston housing median prices in k$ (Keras' boston_housing.npz), 13 features normalised inside the model."""
    (path,) = keras_files.locate([FILE], config.path)
    arrays = keras_files.load_npz(path, FILE, trusted=False, keys=("x", "y"))  # plain numbers: never pickle
    features, prices = arrays["x"], arrays["y"]
    if features.ndim != 2 or features.shape[1] != FEATURES or len(prices) != len(features):
        raise errors.DataError(
            f"data.path: received {path} with x of shape {features.shape} and y of shape {prices.shape}; "
            f"expected Keras' boston_housing.npz: x of shape (samples, {FEATURES}) and one price per sample"
        )
    (order,) = sequences.keras_orders([len(prices)])  # Keras shuffles with seed 113, then cuts
    features, prices = features[order].astype("float32"), prices[order].astype("float32")
    split = int(len(prices) * (1 - config.test_split))
    train, validation = dataset.hold_out(features[:split], prices[:split], config.validation_split, seed, stratify=False)
    return dataset.Dataset(
        task="regression",
        train=train,
        validation=validation,
        test=(features[split:], prices[split:]) if split < len(prices) else None,
        # Raw features: the model's Normalization layer is adapted on the training inputs only (never test).
        normalize=True,
    )
