"""The `data` section of the schema: one class per dataset, picked by `name` (see `dlrun.config.schema`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dlrun.config.fields import (
    Flag,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Section,
    Task,
)

# --- data: one class per dataset, picked by `name` ---------------------------------------------


class DigitsData(Section):
    """scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, offline."""

    name: Literal["digits"]
    test_split: Fraction = 0.25  # share of all images held out as the test split (stratified)
    validation_split: Fraction = 0.2  # share of the remaining images held out for validation

    @property
    def task(self) -> Task:
        return "multiclass"


class SyntheticData(Section):
    """Random, learnable data of any shape, for smoke tests and benchmarks."""

    name: Literal["synthetic"]
    task: Task = "multiclass"  # which kind of target to generate
    num_samples: Annotated[int, Field(ge=10)] = 200  # samples before the test/validation splits
    input_shape: Annotated[list[PositiveInt], Field(min_length=1)] = [8]  # e.g. [8] or [16, 16, 1]
    num_classes: Annotated[int, Field(ge=2)] = 3  # classification only; binary always uses 2
    noise: NonNegativeFloat = 0.5  # standard deviation of the noise added to the signal
    test_split: Fraction = 0.2  # share of samples held out as the test split
    validation_split: Fraction = 0.2  # share of the remaining samples held out for validation


# Keras-hosted datasets: read from Keras' cache (downloaded when missing) or from `path`.
LocalPath = str | None  # None: Keras' cache, downloading the file when missing


class ImdbData(Section):
    """IMDB movie reviews, positive or negative: Keras' imdb.npz (25,000 train, 25,000 test)."""

    name: Literal["imdb"]
    path: LocalPath = None  # a copy of Keras' imdb.npz (or a folder holding it); None: Keras' cache/download
    trusted: Flag = False  # true: unpickle this file although its SHA-256 is not the one Keras publishes
    num_words: Annotated[int, Field(ge=3)] | None = 10000  # keep word indices below this; the rest become OOV (2)
    skip_top: NonNegativeInt = 0  # also turn word indices below this into OOV (Keras' skip_top)
    maxlen: PositiveInt | None = None  # drop sequences of this many tokens or more, start mark included (None: keep all)
    validation_count: NonNegativeInt = 10000  # the first N training reviews (already shuffled by Keras) validate; 0: none

    @property
    def task(self) -> Task:
        return "binary"

    @property
    def has_validation(self) -> bool:
        return self.validation_count > 0


class ReutersData(Section):
    """Reuters newswires, 46 topics: Keras' reuters.npz (11,228 newswires)."""

    name: Literal["reuters"]
    path: LocalPath = None  # a copy of Keras' reuters.npz (or a folder holding it); None: Keras' cache/download
    trusted: Flag = False  # true: unpickle this file although its SHA-256 is not the one Keras publishes
    num_words: Annotated[int, Field(ge=3)] | None = 10000  # keep word indices below this; the rest become OOV (2)
    skip_top: NonNegativeInt = 0  # also turn word indices below this into OOV (Keras' skip_top)
    maxlen: PositiveInt | None = None  # drop sequences of this many tokens or more, start mark included (None: keep all)
    test_split: Fraction = 0.2  # the last share of the Keras-shuffled newswires is the test split (Keras' default)
    validation_count: NonNegativeInt = 1000  # the first N training newswires (already shuffled by Keras) validate; 0: none

    @property
    def task(self) -> Task:
        return "multiclass"

    @property
    def has_validation(self) -> bool:
        return self.validation_count > 0


class BostonHousingData(Section):
    """Boston housing prices: Keras' boston_housing.npz (506 districts, 13 features)."""

    name: Literal["boston_housing"]
    path: LocalPath = None  # a copy of Keras' boston_housing.npz (or a folder holding it); None: Keras' cache/download
    test_split: Fraction = 0.2  # Keras' split after its seed-113 shuffle: 404 train, 102 test
    validation_split: Fraction = 0.0  # share of the training districts held out for validation (0: none, a final fit on all of them)

    @property
    def task(self) -> Task:
        return "regression"


class MnistData(Section):
    """MNIST handwritten digits: Keras' mnist.npz (60,000 train, 10,000 test, 28x28)."""

    name: Literal["mnist"]
    path: LocalPath = None  # a copy of Keras' mnist.npz (or a folder holding it); None: Keras' cache/download
    validation_split: Fraction = 0.0  # share of the training images held out for validation (stratified; 0: none, train on all)

    @property
    def task(self) -> Task:
        return "multiclass"


class FashionMnistData(Section):
    """Fashion-MNIST clothing images: Keras' four IDX .gz files (60,000 train, 10,000 test, 28x28)."""

    name: Literal["fashion_mnist"]
    path: LocalPath = None  # a folder with the four IDX .gz files (e.g. /usr/share/datasets/fashion-mnist); None: Keras' cache/download
    validation_split: Fraction = 0.0  # share of the training images held out for validation (stratified; 0: none)

    @property
    def task(self) -> Task:
        return "multiclass"


class Augmentation(Section):
    """Random image transforms, active in training only: Keras 3 layers in the model (docs/images.md maps each
    option from Keras 2's ImageDataGenerator). All off by default."""

    rotation_range: Annotated[float, Field(ge=0, le=180)] = 0.0  # degrees, rotated by up to +-this
    width_shift_range: Fraction = 0.0  # shifted by up to +-this share of the width
    height_shift_range: Fraction = 0.0  # shifted by up to +-this share of the height
    shear_range: Annotated[float, Field(ge=0, lt=90)] = 0.0  # degrees, as in Keras 2 (0.2 is a tiny shear)
    zoom_range: Fraction = 0.0  # each axis zoomed by a factor in [1 - this, 1 + this]
    horizontal_flip: Flag = False  # mirror left-right half of the time
    vertical_flip: Flag = False  # mirror top-bottom half of the time
    fill_mode: Literal["nearest", "reflect", "wrap", "constant"] = "nearest"  # fills pixels moved in from outside
    fill_value: float = 0.0  # the pixel value fill_mode: constant uses (Keras 2's cval)

    @property
    def active(self) -> bool:
        return bool(
            self.rotation_range
            or self.width_shift_range
            or self.height_shift_range
            or self.shear_range
            or self.zoom_range
            or self.horizontal_flip
            or self.vertical_flip
        )


class ImageDirectoryData(Section):
    """A folder of images, one sub-folder per class, in train/ validation/ test/ or all in one folder."""

    name: Literal["image_directory"]
    path: str  # a folder with train/, validation/, test/ (any of them; train/ needed), or one folder of class folders
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = [150, 150]  # [height, width]
    color_mode: Literal["rgb", "grayscale", "rgba"] = "rgb"  # images of other modes are converted
    interpolation: Literal["bilinear", "nearest", "bicubic", "area"] = "bilinear"  # how images are resized
    crop_to_aspect_ratio: Flag = False  # true: centre-crop to the target aspect ratio instead of squashing
    validation_split: Fraction = 0.0  # without a validation/ folder: share of train images held out (stratified)
    skip_corrupt: Flag = False  # false: an unreadable or non-image file is an error; true: skipped with a warning
    cache: Literal["memory", "disk", "none"] = "memory"  # where decoded images are kept after the first epoch
    cache_dir: str | None = None  # cache: disk: the folder for the cache files (required then)
    augmentation: Augmentation = Augmentation()  # random transforms in training (data augmentation)

    @property
    def has_validation(self) -> bool:
        import os

        return self.validation_split > 0 or os.path.isdir(os.path.join(self.path, "validation"))


class NpzData(Section):
    """A local .npz file: x_train, y_train and optionally x_validation, y_validation, x_test, y_test (read without pickle)."""

    name: Literal["npz"]
    path: str  # the .npz file (relative to the current directory)
    validation_split: Fraction = (
        0.2  # share of x_train held out for validation (stratified for classes); not used when the file holds x_validation
    )
    rescale: PositiveFloat | None = None  # e.g. 0.00392156862745098 (1/255) for 8-bit images; applied inside the model
    class_names: Annotated[list[str], Field(min_length=2)] | None = None  # None: "0", "1", ... (one per label)


class HDF5Data(Section):
    """Images and labels in two HDF5 files, the SIGNS layout (train_signs.h5, test_signs.h5)."""

    name: Literal["hdf5"]
    train_path: str  # the training file, e.g. datasets/signs/train_signs.h5 (relative to the working folder)
    test_path: str | None = None  # the test file, e.g. datasets/signs/test_signs.h5; None: no test split
    train_x_key: str = "train_set_x"  # images in the training file, (N, height, width, channels)
    train_y_key: str = "train_set_y"  # integer labels in the training file, (N,) (or (1, N) / (N, 1))
    test_x_key: str = "test_set_x"  # images in the test file
    test_y_key: str = "test_set_y"  # labels in the test file
    classes_key: str | None = "list_classes"  # class names (in both files); None: named by label value
    scale: Flag = True  # divide pixel values by 255 ([0, 255] -> [0, 1]) in a Rescaling layer of the model
    validation_split: Fraction = 0.0  # share of the training file held out for validation (stratified)
    # No `task` here: binary or multiclass is known once the files are read (the number of classes).


DataConfig = Annotated[
    DigitsData
    | SyntheticData
    | ImdbData
    | ReutersData
    | BostonHousingData
    | MnistData
    | FashionMnistData
    | ImageDirectoryData
    | NpzData
    | HDF5Data,
    Field(discriminator="name"),
]
