"""`dlrun visualize`: Grad-CAM's exactness, activations, filter patterns, curves, and every bad input."""

import json

import numpy as np
import pytest

from dlrun.data import shapes
from dlrun.runs import history
from dlrun.visualize import activations, filters, gradcam, layers, subjects
from tests.conftest import invoke

# --- Grad-CAM, exactly ---------------------------------------------------------------------


def _cam_model(keras, dense_weights, activation="softmax"):
    """conv -> ReLU -> global average pool -> dense, every weight set by hand."""
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(3, 3, padding="same", name="conv"),
            keras.layers.Activation("relu", name="relu"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(dense_weights.shape[1], activation=activation, name="output"),
        ]
    )
    model.get_layer("conv").set_weights([rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3) * 0.1])
    model.get_layer("output").set_weights([dense_weights, np.array([0.3, -0.2])[: dense_weights.shape[1]]])
    features = keras.Model(model.inputs, model.get_layer("relu").output)
    return model, features


def _normalised_relu(values):
    values = np.maximum(values, 0)
    return values / values.max(axis=(1, 2), keepdims=True)


def test_grad_cam_equals_cam_for_a_global_average_pooled_model(keras):
    weights = np.array([[1.0, -0.5], [0.4, 0.8], [-0.7, 0.6]])
    model, features = _cam_model(keras, weights)
    inputs = np.random.default_rng(1).normal(size=(4, 6, 6, 2)).astype("float32")
    head = gradcam.expose_logits(model)
    assert (head.activation, head.num_classes) == ("softmax", 2)
    maps_of = features.predict(inputs, verbose=0)
    for class_index in (0, 1):
        maps, _, classes = gradcam.heatmaps(model, model.get_layer("relu"), inputs, head, class_index)
        cam = np.einsum("bhwk,k->bhw", maps_of, weights[:, class_index])  # CAM: the class weights on the maps
        assert list(classes) == [class_index] * 4
        np.testing.assert_allclose(maps, _normalised_relu(cam), atol=1e-5)


def test_one_sigmoid_unit_explains_class_1_by_its_logit_and_class_0_by_its_negative(keras):
    weights = np.array([[1.0], [-0.6], [0.5]])
    model, features = _cam_model(keras, weights, activation="sigmoid")
    inputs = np.random.default_rng(2).normal(size=(3, 6, 6, 2)).astype("float32")
    head = gradcam.expose_logits(model)
    assert head.num_classes == 2
    cam = np.einsum("bhwk,k->bhw", features.predict(inputs, verbose=0), weights[:, 0])
    for class_index, sign in ((1, 1), (0, -1)):
        maps, _, _ = gradcam.heatmaps(model, model.get_layer("relu"), inputs, head, class_index)
        np.testing.assert_allclose(maps, _normalised_relu(sign * cam), atol=1e-5)


def test_no_positive_evidence_gives_zeros_not_nan(keras):
    model, _ = _cam_model(keras, np.array([[1.0, -1.0], [0.5, -0.2], [0.2, -0.4]]))
    head = gradcam.expose_logits(model)
    inputs = np.random.default_rng(3).normal(size=(2, 6, 6, 2)).astype("float32")
    maps, _, _ = gradcam.heatmaps(model, model.get_layer("relu"), inputs, head, class_index=1)  # all weights < 0 on maps >= 0
    assert np.isfinite(maps).all() and (maps == 0).all()


def test_a_batch_gives_the_same_maps_as_one_image_at_a_time(keras, small_run):
    subject = subjects.from_run(small_run[0])
    head = gradcam.expose_logits(subject.model)
    layer = layers.four_d(subject.model)[-1]
    inputs = shapes.generate(5, size=24, seed=9)[0].astype("float32")
    together, probabilities, classes = gradcam.heatmaps(subject.model, layer, inputs, head)
    for index in range(5):
        alone, _, alone_class = gradcam.heatmaps(subject.model, layer, inputs[index : index + 1], head)
        assert alone_class[0] == classes[index]
        np.testing.assert_allclose(alone[0], together[index], atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)


def test_finds_convolutions_inside_a_nested_base_model(keras):
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    inputs = keras.Input((64, 64, 3))
    hidden = base(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    assert layers.four_d(model)[-1].name == "block5_pool"
    assert [layer.name for layer in layers.conv_and_pool(model)][:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    head = gradcam.expose_logits(model)
    images = np.random.default_rng(4).uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    maps, _, _ = gradcam.heatmaps(model, layers.named(model, "block5_conv3", "Grad-CAM"), images, head, class_index=1)
    assert maps.shape == (2, 4, 4) and np.isfinite(maps).all()
    assert model.get_layer("rescaling").call.__self__ is model.get_layer("rescaling")  # nothing left patched


# --- activations and filters -----------------------------------------------------------------


def test_dead_channels_are_blank(keras):
    activation = np.zeros((4, 4, 3))
    activation[..., 1] = np.arange(16).reshape(4, 4)
    shown = activations.normalised_channels(activation)
    assert np.isnan(shown[0]).all() and np.isnan(shown[2]).all()
    assert shown[1].min() == 0 and shown[1].max() == 1


def test_activations_files_and_shapes(small_run, tmp_path):
    run, images = small_run
    result = invoke("visualize", "activations", "--run", run, "--image", images[0], "--image", images[1], "--out", tmp_path)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "activations").iterdir()
    expected = {"01_conv_1": (24, 24, 4), "02_pool_1": (12, 12, 4), "03_conv_2": (12, 12, 8)}
    for image in images[:2]:
        found = sorted(path.name for path in (folder / image.stem).iterdir())
        assert found == sorted(f"{name}{suffix}" for name in expected for suffix in (".npy", ".png"))
        for name, shape in expected.items():
            assert np.load(folder / image.stem / f"{name}.npy").shape == shape


def test_activations_of_named_layers_only(small_run, tmp_path):
    run, images = small_run
    result = invoke("visualize", "activations", "--run", run, "--image", images[0], "--layer", "conv_2", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "activations").iterdir()
    assert sorted(path.name for path in (folder / images[0].stem).iterdir()) == ["01_conv_2.npy", "01_conv_2.png"]


def test_gradient_ascent_increases_each_filters_mean_activation(small_run):
    subject = subjects.from_run(small_run[0])
    layer = layers.named(subject.model, "conv_2", "filters")
    patterns, before, after = filters.ascend(subject.model, layer, list(range(8)), (24, 24, 1), steps=10, pixel_range=subject.pixel_range)
    assert patterns.shape == (8, 24, 24, 1)
    assert subject.pixel_range == pytest.approx(255)
    live = before > 0  # a ReLU filter that never fires on the start image has no gradient to climb
    assert live.sum() >= 3, before
    assert (before[live] < after[live]).all(), (before, after)
    assert (after >= before).all()


def test_filters_files(small_run, tmp_path):
    result = invoke("visualize", "filters", "--run", small_run[0], "--layer", "conv_1", "--filters", "3", "--steps", "2", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "filters").iterdir()
    assert sorted(path.name for path in folder.iterdir()) == ["conv_1_filters.npy", "conv_1_filters.png"]
    assert np.load(folder / "conv_1_filters.npy").shape == (3, 24, 24, 1)
    assert "conv_1: 3 filter patterns" in result.output


# --- Grad-CAM through the CLI -------------------------------------------------------------------


def test_gradcam_writes_maps_overlays_and_prints_class_names(small_run, tmp_path):
    run, images = small_run
    folder_of_images = images[0].parent
    result = invoke("visualize", "gradcam", "--run", run, "--image", folder_of_images, "--top", "2", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "gradcam").iterdir()
    summary = json.loads((folder / "gradcam.json").read_text())
    assert summary["layer"] == "conv_2" and len(summary["images"]) == 3
    for image in images:
        assert f"{image}: " in result.output
        assert np.load(folder / f"{image.stem}_heatmap.npy").shape == (12, 12)
        from PIL import Image

        with Image.open(folder / f"{image.stem}_overlay.png") as overlay:
            assert overlay.size == (24, 24)  # the original's size
    assert {"square", "disk"} == {entry["class_name"] for entry in summary["images"][0]["top"]}
    again = invoke("visualize", "gradcam", "--run", run, "--image", images[0], "--out", tmp_path)
    assert again.exit_code == 0 and len(list((tmp_path / "gradcam").iterdir())) == 2  # never overwritten


def _fails(tmp_path, *args, expected):
    out = tmp_path / "out"
    result = invoke("visualize", *args, "--out", out)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    return result.stderr


def test_missing_image(small_run, tmp_path):
    _fails(
        tmp_path,
        "gradcam",
        "--run",
        small_run[0],
        "--image",
        tmp_path / "cat.jpg",
        expected=f"--image: received '{tmp_path / 'cat.jpg'}'; expected an existing image file or folder (no such file)",
    )


def test_unreadable_image(small_run, tmp_path):
    bad = tmp_path / "cat.jpg"
    bad.write_text("not an image")
    _fails(tmp_path, "activations", "--run", small_run[0], "--image", bad, expected=f"--image: {bad} cannot be read as an image")


def test_unknown_layer_lists_the_valid_ones(small_run, tmp_path):
    _fails(
        tmp_path,
        "gradcam",
        "--run",
        small_run[0],
        "--image",
        small_run[1][0],
        "--layer",
        "conv_3",
        expected="--layer: received 'conv_3'; expected one of the model's 4-D layers: rescale, conv_1, pool_1, conv_2 (did you mean 'conv_2'?)",
    )
    _fails(
        tmp_path,
        "filters",
        "--run",
        small_run[0],
        "--layer",
        "output",
        expected="--layer: received 'output' ('output' exists but its output is not 4-D)",
    )


def test_class_index_out_of_range(small_run, tmp_path):
    _fails(
        tmp_path,
        "gradcam",
        "--run",
        small_run[0],
        "--image",
        small_run[1][0],
        "--class-index",
        "2",
        expected="--class-index: received 2; expected 0..1, one of the model's 2 classes (square, disk)",
    )


def test_model_without_a_4d_layer(trained_run, tmp_path):
    image = shapes.write_images(tmp_path / "images", count=1, size=24)[0]
    _fails(tmp_path, "gradcam", "--run", trained_run, "--image", image, expected="has no layer with a 4-D output")


def test_run_without_a_model(tmp_path):
    (tmp_path / "run").mkdir()
    _fails(tmp_path, "gradcam", "--run", tmp_path / "run", "--image", tmp_path, expected="not a dlrun run folder (no run.json)")


def test_imagenet_weights_offline_say_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def offline(file_name, url):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(subjects, "download", offline)
    image = shapes.write_images(tmp_path / "images", count=1, size=24)[0]
    message = _fails(
        tmp_path,
        "gradcam",
        "--image",
        image,
        expected="--model vgg16 --weights imagenet: cannot download vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    )
    assert f"expected the file at {tmp_path / 'keras_home' / 'models' / 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'}" in message
    assert "or pass --run RUN_DIR" in message


def test_imagenet_class_names_offline_fall_back_to_indices(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(subjects, "download", lambda file_name, url: (_ for _ in ()).throw(OSError("offline")))
    assert subjects.imagenet_class_names() is None
    models = tmp_path / "models"
    models.mkdir()
    (models / "imagenet_class_index.json").write_text(json.dumps({str(i): [f"n{i}", f"name{i}"] for i in range(1000)}))
    assert subjects.imagenet_class_names()[:2] == ["name0", "name1"]


def test_run_and_model_together_is_an_error(small_run, tmp_path):
    _fails(tmp_path, "filters", "--run", small_run[0], "--model", "vgg16", "--layer", "x", expected="--run and --model: received both")


def test_unknown_application(tmp_path):
    _fails(tmp_path, "filters", "--model", "vgg61", "--layer", "x", expected="--model: received 'vgg61'; expected one of vgg16")


# --- learning curves ------------------------------------------------------------------------------


def _history_folder(path, losses):
    path.mkdir(parents=True)
    run_history = history.empty()
    for epoch, loss in enumerate(losses, start=1):
        history.append(run_history, epoch, {"loss": loss, "accuracy": 0.5, "val_loss": loss + 0.1, "val_accuracy": 0.4})
    history.save(path / history.FILE_NAME, run_history)
    return path


def test_curves_of_one_run_and_of_several_overlaid(tmp_path):
    first = _history_folder(tmp_path / "a", [1.0, 0.5, 0.7])
    second = _history_folder(tmp_path / "b", [0.9, 0.8])
    one = invoke("visualize", "curves", first)
    assert one.exit_code == 0, one.output
    (folder,) = (first / "visualize" / "curves").iterdir()
    assert sorted(path.name for path in folder.iterdir()) == ["accuracy.png", "loss.png"]
    assert "a: 3 epochs, best val_loss at epoch 2 (0.6000); best val_accuracy at epoch 1 (0.4000)" in one.output
    both = invoke("visualize", "curves", first, second, "--out", tmp_path / "out")
    assert both.exit_code == 0, both.output
    (folder,) = (tmp_path / "out" / "curves").iterdir()
    assert sorted(path.name for path in folder.iterdir()) == ["accuracy.png", "loss.png"]
    assert invoke("visualize", "curves", first).exit_code == 0
    assert len(list((first / "visualize" / "curves").iterdir())) == 2  # a second folder, nothing overwritten


def test_curves_of_a_folder_without_history(tmp_path):
    (tmp_path / "empty").mkdir()
    _fails(tmp_path, "curves", tmp_path / "empty", expected=f"RUN_DIR: received '{tmp_path / 'empty'}' (no history.json)")


def _tick_labels_of_saved_figures(monkeypatch) -> list:
    """Every figure saved from now on, kept so a test can read its axes after drawing."""
    from matplotlib import figure

    saved, original = [], figure.Figure.savefig

    def keep(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(figure.Figure, "savefig", keep)
    return saved


def _epoch_ticks(fig) -> list[str]:
    return [label.get_text() for axes in fig.axes if axes.get_xlabel() == "epoch" for label in axes.get_xticklabels()]


@pytest.mark.parametrize("draw", ["learning_curves", "fold_curves", "compare_curves", "visualize_curves_overlaid"])
def test_learning_curve_plots_mark_whole_epochs(tmp_path, monkeypatch, draw):
    """Three epochs: matplotlib alone would label 1.00, 1.25, ... 3.00."""
    from dlrun.runs import plots
    from dlrun.visualize import curves

    saved = _tick_labels_of_saved_figures(monkeypatch)
    run_history = {"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.4], "val_loss": [0.9, 0.6, 0.7]}
    if draw == "learning_curves":
        plots.learning_curves(run_history, tmp_path)
    elif draw == "fold_curves":
        plots.fold_curves([[0.9, 0.6, 0.7], [0.8, 0.7, 0.6]], [0.85, 0.65, 0.65], None, 2, "val_loss", tmp_path / "k.png")
    elif draw == "compare_curves":
        plots.compare_curves({"a": run_history, "b": run_history}, tmp_path / "c.png")
    else:
        curves.overlaid({"a": run_history, "b": run_history}, tmp_path)
    ticks = [text for fig in saved for text in _epoch_ticks(fig)]
    assert ticks and all(text.lstrip("−-").isdigit() for text in ticks), ticks
    assert {"1", "2", "3"} <= set(ticks)


def test_the_best_epoch_line_in_a_plot_names_its_quantity(tmp_path, monkeypatch):
    from dlrun.runs import plots

    saved = _tick_labels_of_saved_figures(monkeypatch)
    plots.learning_curves(
        {
            "epoch": [1, 2, 3],
            "loss": [1.0, 0.5, 0.4],
            "val_loss": [0.9, 0.6, 0.7],
            "accuracy": [0.5, 0.8, 0.9],
            "val_accuracy": [0.6, 0.8, 0.85],
        },
        tmp_path,
    )
    legends = [[text.get_text() for text in fig.axes[0].get_legend().get_texts()] for fig in saved]
    assert "best val_loss at epoch 2" in legends[0] and "best val_accuracy at epoch 3" in legends[1]
