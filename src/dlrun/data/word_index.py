"""Keras' word indices for IMDB and Reuters: turning a word-index sequence back into words, to show examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlrun import errors
from dlrun.data import keras_files, sequences

FILES = {  # Keras' word-index files, checked by their hash as keras.datasets does
    "imdb": keras_files.KerasFile("imdb_word_index.json", file_hash="bfafd718b763782e994055a2d397834f"),
    "reuters": keras_files.KerasFile("reuters_word_index.json", file_hash="4d44cc38712099c9e383dc6e5f11a921"),
}
PADDING, START, OOV = "", "[START]", "[OOV]"


def load(dataset_name: str, path: str | Path | None = None) -> dict[str, int]:
    """The word -> rank mapping of `dataset_name`: from `path` (Keras' JSON file or its folder), else Keras' cache/download."""
    if dataset_name not in FILES:
        raise errors.DataError(f"word index: received {dataset_name!r}; expected one of {', '.join(FILES)}")
    (located,) = keras_files.locate([FILES[dataset_name]], None if path is None else str(path))
    try:
        mapping = json.loads(Path(located).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise errors.DataError(
            f"data.path: {located} cannot be read as JSON ({error}); expected Keras' {FILES[dataset_name].name}"
        ) from None
    if not isinstance(mapping, dict) or not all(isinstance(rank, int) for rank in mapping.values()):
        raise errors.DataError(
            f"data.path: {located} is not a mapping of words to integer ranks; expected Keras' {FILES[dataset_name].name}"
        )
    return mapping


def decode(sequence: Any, word_index: dict[str, int]) -> str:
    """The words of a sequence as dlrun and Keras encode it (ranks + 3; 1 start, 2 OOV, 0 padding dropped)."""
    words = {rank + sequences.INDEX_FROM: word for word, rank in word_index.items()}
    words[sequences.START_CHAR] = START
    words[sequences.OOV_CHAR] = OOV
    return " ".join(words.get(int(token), OOV) for token in sequence if int(token) != 0)
