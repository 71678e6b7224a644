"""Turning raw text into the word-index sequences Keras' text datasets (IMDB, Reuters) are made of.

The conventions of `keras.datasets.imdb.load_data`: a word's rank in the dataset's word index
(1 = most frequent) is shifted by INDEX_FROM, every sequence starts with START_CHAR, and a token
outside `skip_top <= token < num_words` (an unknown word included) becomes OOV_CHAR; 0 is padding.
"""

from __future__ import annotations

import re

import numpy as np

START_CHAR = 1  # marks the start of every sequence (Keras' default)
OOV_CHAR = 2  # replaces unknown words and words cut by num_words or skip_top (Keras' default)
INDEX_FROM = 3  # word ranks are shifted by this, keeping 0 (padding), 1 (start) and 2 (OOV) free
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_MARKUP = re.compile(r"<[^>]+>")


def words(text: str) -> list[str]:
    """The words of `text` as the word indices spell them: lower case, markup (`<br />`) and punctuation dropped."""
    return _WORD.findall(_MARKUP.sub(" ", text.lower()))


def encode(text: str, word_index: dict[str, int], num_words: int | None = None, skip_top: int = 0) -> list[int]:
    """`text` as a sequence of token ids, start mark first, exactly as Keras encodes its text datasets."""
    tokens = [START_CHAR] + [word_index[word] + INDEX_FROM if word in word_index else OOV_CHAR for word in words(text)]
    limit = num_words if num_words is not None else max(tokens) + 1
    return [token if skip_top <= token < limit else OOV_CHAR for token in tokens]


def distinct_padded(sequences: list[list[int]], width: int) -> np.ndarray:
    """Each sequence's distinct tokens, sorted, padded with 0 to `width` (the multi-hot input layout).

    Raises ValueError when a sequence has more distinct tokens than `width`.
    """
    rows = np.zeros((len(sequences), width), dtype="int32")
    for row, sequence in enumerate(sequences):
        distinct = sorted(set(sequence))
        if len(distinct) > width:
            raise ValueError(len(distinct))
        rows[row, : len(distinct)] = distinct
    return rows


def multi_hot(sequences: list[list[int]], num_tokens: int) -> np.ndarray:
    """The multi-hot vectors of `sequences` (no padding token set), float32 (count, num_tokens)."""
    vectors = np.zeros((len(sequences), num_tokens), dtype="float32")
    for row, sequence in enumerate(sequences):
        vectors[row, [token for token in sequence if token < num_tokens]] = 1.0
    return vectors
