"""`dlrun visualize curves|activations|filters|gradcam`: pictures of runs and models, as PNG (+ .npy) files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from dlrun.commands import help_text

RUN_OPTION = typer.Option(None, "--run", help="A dlrun run folder: its model.keras and class names.", show_default=False)
MODEL_OPTION = typer.Option(None, "--model", help="A keras.applications model instead of a run: vgg16.", show_default=False)
WEIGHTS_OPTION = typer.Option(
    "imagenet", "--weights", help="For --model: imagenet (Keras' cache, downloaded on first use), none, or a weights file."
)
IMAGE_OPTION = typer.Option(..., "--image", help="An image file or a folder of images (repeatable).", show_default=False)
OUT_OPTION = typer.Option(
    None, "--out", help="Write under DIR/<kind>/<timestamp>/ instead of RUN_DIR/visualize/<kind>/<timestamp>/.", show_default=False
)


def typer_app(reports_errors: Callable[[Callable[..., None]], Callable[..., None]]) -> typer.Typer:
    """The `visualize` sub-app, each command wrapped by `reports_errors` (DlrunError -> one line, exit code)."""
    app = typer.Typer(
        cls=help_text.Group, help="Learning curves, intermediate activations, filter patterns and Grad-CAM heatmaps.", no_args_is_help=True
    )
    for name, command in (("curves", curves), ("activations", activations), ("filters", filters), ("gradcam", gradcam)):
        app.command(name, cls=help_text.Command)(reports_errors(command))
    return app


def curves(
    run_dirs: list[Path] = typer.Argument(
        ..., metavar="RUN_DIR...", help="One or more run folders (several: overlaid).", show_default=False
    ),
    out: Path = OUT_OPTION,
) -> None:
    """Loss and metrics, train vs validation, from history.json (several runs overlaid); best epoch marked."""
    from dlrun.visualize import curves as curves_module

    curves_module.run(run_dirs, out, typer.echo)


def activations(
    image: list[Path] = IMAGE_OPTION,
    run: Path = RUN_OPTION,
    model: str = MODEL_OPTION,
    weights: str = WEIGHTS_OPTION,
    count: int = typer.Option(None, "--layers", help="Show the first N conv/pool layers (default 8).", show_default=False),
    layer: list[str] = typer.Option([], "--layer", help="Show this layer (repeatable; instead of --layers).", show_default=False),
    out: Path = OUT_OPTION,
) -> None:
    """Every channel's activation map for each image, one grid PNG (and .npy) per conv/pool layer."""
    from dlrun.visualize import activations as activations_module

    subject = _subject(run, model, weights, include_top=False, out=out)
    activations_module.run(subject, image, count, layer, out, typer.echo)


def filters(
    layer: str = typer.Option(..., "--layer", help="The convolution layer whose filters to show.", show_default=False),
    run: Path = RUN_OPTION,
    model: str = MODEL_OPTION,
    weights: str = WEIGHTS_OPTION,
    count: int = typer.Option(64, "--filters", help="How many filters (the first N)."),
    steps: int = typer.Option(30, "--steps", help="Gradient-ascent steps per pattern."),
    out: Path = OUT_OPTION,
) -> None:
    """The input pattern that maximally activates each filter (gradient ascent), in a grid PNG (and .npy)."""
    from dlrun.visualize import filters as filters_module

    subject = _subject(run, model, weights, include_top=False, out=out)
    filters_module.run(subject, layer, count, steps, out, typer.echo)


def gradcam(
    image: list[Path] = IMAGE_OPTION,
    run: Path = RUN_OPTION,
    model: str = MODEL_OPTION,
    weights: str = WEIGHTS_OPTION,
    layer: str = typer.Option(None, "--layer", help="The 4-D layer to explain at (default: the last one).", show_default=False),
    class_index: int = typer.Option(None, "--class-index", help="The class to explain (default: the top prediction).", show_default=False),
    top: int = typer.Option(3, "--top", help="How many top predictions to print."),
    alpha: float = typer.Option(0.4, "--alpha", help="The heatmap's opacity in the overlay (0-1)."),
    out: Path = OUT_OPTION,
) -> None:
    """Grad-CAM heatmaps: print the top predictions, write heatmap and overlay PNGs and the raw map (.npy).

    With neither --run nor --model, uses VGG16 with ImageNet weights.
    """
    from dlrun.visualize import gradcam as gradcam_module

    subject = _subject(run, model or ("vgg16" if run is None else None), weights, include_top=True, out=out)
    gradcam_module.run(subject, image, layer, class_index, top, alpha, out, typer.echo)


def _subject(run: Path | None, model: str | None, weights: str, include_top: bool, out: Path | None) -> Any:
    from dlrun import errors
    from dlrun.visualize import subjects

    if run is not None and model is not None:
        raise errors.UsageError("--run and --model: received both; expected one (a run folder, or a keras.applications model)")
    if run is not None:
        return subjects.from_run(run, out)
    if model is None:
        raise errors.UsageError("--run: received nothing; expected --run RUN_DIR or --model vgg16")
    return subjects.from_application(model, weights, include_top)
