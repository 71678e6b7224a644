"""Where visualisations go and how they are written: a new folder per command, every file atomic.

Each command writes into `<root>/<kind>/<UTC timestamp>/` (root: `RUN_DIR/visualize` or `--out DIR`),
a folder created fresh for it (`-2`, `-3`, ... when the name is taken), so nothing is ever overwritten.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import numpy as np

from dlrun import atomic


def new_folder(root: str | Path, kind: str) -> Path:
    """Create and return a new, empty `<root>/<kind>/<timestamp>[-N]/` folder."""
    from dlrun import runs

    stem = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return runs.unique_folder(Path(root) / kind, stem, "--out")


def unique_stems(paths: list[Path]) -> list[str]:
    """File-name stems for `paths`, made distinct (`cat`, `cat-2`) when two images share a name."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        count = seen[path.stem] = seen.get(path.stem, 0) + 1
        stems.append(path.stem if count == 1 else f"{path.stem}-{count}")
    return stems


def save_array(path: Path, array: np.ndarray) -> Path:
    """Write `array` as a `.npy` file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return atomic.write_bytes(path, buffer.getvalue())


def save_image(path: Path, pixels: np.ndarray) -> Path:
    """Write uint8 pixels [height, width, 3] (or [height, width]) as a PNG, atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return atomic.write_bytes(path, buffer.getvalue())


def save_figure(figure: Any, path: Path) -> Path:
    """Write a matplotlib figure as a PNG, atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return atomic.write_bytes(path, buffer.getvalue())


def mosaic_figure(tiles: np.ndarray, title: str, columns: int, cmap: str = "viridis") -> Any:
    """A figure showing `tiles` [count, height, width] (or [count, height, width, 3]) in a grid.

    NaN tiles (dead channels) and the gaps between tiles are drawn blank (white), not as noise.
    """
    from matplotlib import figure as matplotlib_figure
    from matplotlib.backends import backend_agg

    count, height, width = tiles.shape[:3]
    rows = -(-count // columns)
    gap = 1
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap, *tiles.shape[3:])
    canvas = np.full(shape, np.nan, dtype="float32")
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        canvas[top : top + height, left : left + width] = tile
    scale = max(1.0, 12.0 / max(shape[0], shape[1]) * 48)  # small tiles get bigger pixels
    size = (min(shape[1] * scale / 100 + 0.5, 24), min(shape[0] * scale / 100 + 0.8, 24))
    fig = matplotlib_figure.Figure(figsize=size, dpi=100)
    backend_agg.FigureCanvasAgg(fig)
    axes = fig.add_axes((0.01, 0.01, 0.98, 0.9))
    if canvas.ndim == 3:  # colour tiles: blank gaps are white
        canvas = np.where(np.isnan(canvas), 1.0, canvas)
        axes.imshow(canvas, interpolation="nearest")
    else:
        import matplotlib

        colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
        axes.imshow(np.ma.masked_invalid(canvas), cmap=colours, vmin=0, vmax=1, interpolation="nearest")
    axes.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return fig
