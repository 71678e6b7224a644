"""Fashion-MNIST (Zalando): 60,000 train and 10,000 test 28x28 grayscale clothing images, four IDX files."""

from __future__ import annotations

from pathlib import Path

from dlrun.data import dataset, keras_files, mnist

# Keras publishes no hash for these files (keras.datasets.fashion_mnist checks none), so a local
# folder is read as it is; the IDX headers are checked instead.
FILES = [
    keras_files.KerasFile(name, cache_subdir="datasets/fashion-mnist")
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
]
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")  # Debian's package dataset-fashion-mnist


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Fashion-MNIST clothing images (Keras' four IDX files), 28x28x1, 10 classes, scaled to [0, 1] inside the model."""
    hint = str(DEBIAN_FOLDER) if DEBIAN_FOLDER.is_dir() else "/path/to/fashion-mnist"
    paths = keras_files.locate(FILES, config.path, hint=hint)
    train_images, train_labels, test_images, test_labels = (
        keras_files.read_idx(path, keras_files.IDX_IMAGES_MAGIC if "images" in path.name else keras_files.IDX_LABELS_MAGIC)
        for path in paths
    )
    return mnist.images(train_images, train_labels, test_images, test_labels, config, seed, CLASS_NAMES, str(paths[0].parent))
