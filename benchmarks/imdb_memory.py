"""Peak memory of training the IMDB config: dlrun's way against the book's float multi-hot matrices.

    python benchmarks/imdb_memory.py [--epochs 4] [--reviews 25000]

Generates full-size IMDB-shaped data in Keras' imdb.npz format (25,000 train + 25,000 test reviews,
~240 words each on average, word ranks 1..88,000 drawn Zipf-like), then trains each way in its own
subprocess and reads that process's peak resident memory with resource.getrusage:

- dlrun: `dlrun train configs/imdb.yaml` (int32 padded distinct-word rows, multi-hot inside the model);
- book: `keras.datasets.imdb.load_data(num_words=10000)` (its download pointed at the generated file),
  the book's `vectorize_sequences` (float64, 25,000 x 10,000 per split) and the same Dense 16-16-1 model.

Results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = 88_000  # IMDB's word index has 88,584 words


def generate(path: Path, reviews: int, seed: int = 0) -> None:
    """An imdb.npz in Keras' format: object arrays of Python lists of word ranks, 0/1 labels."""
    rng = np.random.default_rng(seed)
    probabilities = 1.0 / np.arange(1, VOCABULARY + 1)
    probabilities /= probabilities.sum()
    arrays = {}
    for split in ("train", "test"):
        lengths = np.clip(rng.lognormal(mean=np.log(240) - 0.245, sigma=0.7, size=reviews), 11, 2500).astype(int)
        words = rng.choice(VOCABULARY, size=int(lengths.sum()), p=probabilities) + 1
        sequences = np.empty(reviews, dtype=object)
        for index, chunk in enumerate(np.split(words, np.cumsum(lengths)[:-1])):
            sequences[index] = chunk.tolist()
        arrays[f"x_{split}"] = sequences
        arrays[f"y_{split}"] = rng.integers(0, 2, reviews)
    np.savez(path, **arrays)


def held_out(path: Path) -> int:
    """The config's 10,000 validation reviews, or 40% of the training reviews when generating fewer (quick runs)."""
    reviews = int(path.name.split("_")[0]) if "_" in path.name else 25_000
    return min(10_000, int(0.4 * reviews))


def child_dlrun(path: Path, epochs: int) -> dict:
    import io

    from rich.console import Console

    from dlrun import config
    from dlrun.training import trainer

    with tempfile.TemporaryDirectory() as runs:
        settings = [
            f"data.path={path}",
            "data.trusted=true",
            f"data.validation_count={held_out(path)}",
            f"train.epochs={epochs}",
            f"output.runs_root={runs}",
            "output.plots=false",
            "output.save_model=false",
            "backend=tensorflow",
        ]  # the book's way runs on TensorFlow: compare on the same engine
        run = trainer.train(config.load(ROOT / "configs" / "imdb.yaml", settings), Console(file=io.StringIO()))
        metrics = json.loads((run.path / "metrics.json").read_text())["metrics"]
    return {"test_accuracy": metrics["accuracy"]}


def child_book(path: Path, epochs: int) -> dict:
    from dlrun import backend

    keras = backend.import_keras()
    backend.seed_everything(42)
    from keras.src.datasets import imdb

    imdb.get_file = lambda *args, **kwargs: str(path)  # the generated file instead of the download
    (train_data, train_labels), (test_data, test_labels) = keras.datasets.imdb.load_data(num_words=10000)

    def vectorize_sequences(sequences, dimension=10000):  # the book, listing 3.2
        results = np.zeros((len(sequences), dimension))
        for i, sequence in enumerate(sequences):
            results[i, sequence] = 1.0
        return results

    x_train, x_test = vectorize_sequences(train_data), vectorize_sequences(test_data)
    y_train, y_test = np.asarray(train_labels).astype("float32"), np.asarray(test_labels).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((10000,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    count = held_out(path)
    model.fit(
        x_train[count:], y_train[count:], epochs=epochs, batch_size=512, validation_data=(x_train[:count], y_train[:count]), verbose=0
    )
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    return {"test_accuracy": float(accuracy)}


def run_child(way: str, path: Path, epochs: int) -> dict:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--child", way, "--file", str(path), "--epochs", str(epochs)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    if result.returncode != 0:
        raise SystemExit(f"{way} failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["wall_seconds"] = round(time.perf_counter() - started, 1)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--reviews", type=int, default=25_000, help="reviews per split")
    parser.add_argument("--child", choices=["dlrun", "book"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        measured = (child_dlrun if arguments.child == "dlrun" else child_book)(arguments.file, arguments.epochs)
        measured["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
        print(json.dumps(measured))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{arguments.reviews}_imdb.npz"
        started = time.perf_counter()
        generate(path, arguments.reviews)
        print(
            f"generated {2 * arguments.reviews:,} reviews in {time.perf_counter() - started:.0f} s "
            f"({path.stat().st_size / 2**20:.0f} MiB imdb.npz)",
            flush=True,
        )
        results = {way: run_child(way, path, arguments.epochs) for way in ("dlrun", "book")}
    for way, measured in results.items():
        print(
            f"{way:6s} peak RSS {measured['peak_rss_mib']:8.1f} MiB   wall {measured['wall_seconds']:6.1f} s   "
            f"test accuracy {measured['test_accuracy']:.4f} (random labels: ~0.5 expected)"
        )
    ratio = results["book"]["peak_rss_mib"] / results["dlrun"]["peak_rss_mib"]
    print(f"ratio book / dlrun: {ratio:.1f}x; dlrun under 1 GiB: {results['dlrun']['peak_rss_mib'] < 1024}")


if __name__ == "__main__":
    main()
