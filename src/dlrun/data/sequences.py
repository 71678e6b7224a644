"""Word-index sequences as Keras' text datasets (IMDB, Reuters) deliver them, held compactly.

Keras' `load_data` builds lists of Python ints; here each split is one flat int32 array plus the
sequence lengths (a ragged array), which takes about a ninth of the memory and is processed with NumPy. The
encoding follows `keras.datasets.imdb.load_data` step for step: `start_char` first, words shifted by
`index_from`, sequences of `maxlen` or more tokens dropped, and every word outside
`skip_top <= word < num_words` replaced by `oov_char`.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from dlrun import errors

START_CHAR = 1  # marks the start of every sequence (Keras' default)
OOV_CHAR = 2  # replaces words cut by num_words or skip_top (Keras' default)
INDEX_FROM = 3  # word ranks are shifted by this, keeping 0 (padding), 1 (start) and 2 (OOV) free
KERAS_SEED = 113  # the seed Keras shuffles its text datasets with


@dataclasses.dataclass
class Ragged:
    """Sequences of varying length: `tokens` concatenated, `lengths[i]` of them belong to sequence i."""

    tokens: np.ndarray  # int32, all sequences back to back
    lengths: np.ndarray  # int64, one per sequence

    def __len__(self) -> int:
        return len(self.lengths)

    def take(self, keep: np.ndarray) -> Ragged:
        """The sequences where the boolean mask `keep` is true, in order."""
        return Ragged(self.tokens[np.repeat(keep, self.lengths)], self.lengths[keep])

    def reorder(self, order: np.ndarray) -> Ragged:
        """The sequences in the order of the indices `order`."""
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        lengths = self.lengths[order]
        new_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        positions = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts[order] - new_starts, lengths)
        return Ragged(self.tokens[positions], lengths)

    def sequence(self, index: int) -> np.ndarray:
        """The tokens of sequence `index`."""
        start = int(self.lengths[:index].sum())
        return self.tokens[start : start + int(self.lengths[index])]


def from_objects(sequences: np.ndarray) -> Ragged:
    """A Ragged from an object array of lists (the form Keras' .npz files store)."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    tokens = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    return Ragged(tokens, lengths)


def encode(sequences: Ragged) -> Ragged:
    """Shift words by INDEX_FROM and put START_CHAR in front of each sequence, as Keras does."""
    lengths = sequences.lengths + 1
    tokens = np.empty(int(lengths.sum()), dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    is_start = np.zeros(len(tokens), dtype=bool)
    is_start[starts] = True
    tokens[is_start] = START_CHAR
    tokens[~is_start] = sequences.tokens + INDEX_FROM
    return Ragged(tokens, lengths)


def shorter_than(sequences: Ragged, maxlen: int | None) -> np.ndarray:
    """The mask of sequences Keras keeps for `maxlen` (length < maxlen; all when maxlen is None)."""
    if maxlen is None:
        return np.ones(len(sequences), dtype=bool)
    return sequences.lengths < maxlen


def limit_vocabulary(sequences: Ragged, num_words: int, skip_top: int) -> Ragged:
    """Replace every word outside `skip_top <= word < num_words` with OOV_CHAR, as Keras does (in place)."""
    tokens = sequences.tokens
    np.putmask(tokens, (tokens < skip_top) | (tokens >= num_words), OOV_CHAR)
    return sequences


def unique_padded(parts: list[Ragged], num_words: int, chunk_rows: int = 2048) -> list[np.ndarray]:
    """Each sequence's distinct words, sorted, padded with 0 to one width shared by all parts: (count, width).

    Multi-hot encoding ignores order and repeats, so this holds everything a multi-hot model sees in
    a fraction of the space of the padded full sequences (and far less than the float matrix). One
    width for every part (split), because the model's input has one shape. Rows are de-duplicated
    `chunk_rows` at a time, so the temporary arrays stay small. Stored as int16 when every word fits
    (num_words <= 32,767: half the memory, here and in TensorFlow's copies); the model's int32 Input
    casts each batch.
    """
    dtype = np.int16 if num_words <= np.iinfo(np.int16).max else np.int32
    distinct = [_distinct_words(part, num_words, chunk_rows) for part in parts]
    width = max([1, *(int(counts.max(initial=0)) for _, _, counts in distinct)])
    padded_parts = []
    for rows, words, counts in distinct:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        padded = np.zeros((len(counts), width), dtype=dtype)
        padded[rows, np.arange(len(rows)) - starts[rows]] = words
        padded_parts.append(padded)
    return padded_parts


def _distinct_words(sequences: Ragged, num_words: int, chunk_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of each distinct word, the word, distinct words per row), rows in order, words sorted."""
    row_chunks: list[np.ndarray] = []
    word_chunks: list[np.ndarray] = []
    offset, token_offset = 0, 0
    while offset < len(sequences):
        lengths = sequences.lengths[offset : offset + chunk_rows]
        tokens = sequences.tokens[token_offset : token_offset + int(lengths.sum())]
        keys = np.unique(np.repeat(np.arange(offset, offset + len(lengths), dtype=np.int64), lengths) * num_words + tokens)
        row_chunks.append((keys // num_words).astype(np.int32))
        word_chunks.append((keys % num_words).astype(np.int32))
        offset, token_offset = offset + chunk_rows, token_offset + len(tokens)
    rows = np.concatenate(row_chunks) if row_chunks else np.zeros(0, dtype=np.int32)
    words = np.concatenate(word_chunks) if word_chunks else np.zeros(0, dtype=np.int32)
    return rows, words, np.bincount(rows, minlength=len(sequences))


def keras_orders(sizes: list[int]) -> list[np.ndarray]:
    """The shuffles Keras' `load_data` applies to arrays of these sizes, in turn, from one seeded RandomState."""
    rng = np.random.RandomState(KERAS_SEED)
    orders = []
    for size in sizes:
        indices = np.arange(size)
        rng.shuffle(indices)
        orders.append(indices)
    return orders


def prepare(
    parts: list[tuple[Ragged, np.ndarray]], num_words: int | None, skip_top: int, maxlen: int | None
) -> tuple[list[tuple[Ragged, np.ndarray]], int]:
    """Keras' encoding of (sequences, labels) parts already in Keras' order; returns (parts, num_words).

    Consumes `parts` (each input is dropped once encoded, to keep memory low). num_words None means
    Keras' default: the largest word index (which Keras itself then maps to OOV).
    """
    encoded = []
    while parts:
        words, labels = parts.pop(0)
        words = encode(words)
        keep = shorter_than(words, maxlen)
        if not keep.any():
            raise errors.DataError(
                f"data.maxlen: received {maxlen}, which drops every sequence of a split (the shortest has "
                f"{int(words.lengths.min(initial=0))} tokens, start mark included); expected a larger maxlen or null"
            )
        encoded.append((words.take(keep) if not keep.all() else words, labels[keep]))
        del words
    if num_words is None:
        num_words = max(int(words.tokens.max(initial=0)) for words, _ in encoded)
    return [(limit_vocabulary(words, num_words, skip_top), labels) for words, labels in encoded], num_words
