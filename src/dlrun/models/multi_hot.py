"""Multi-hot text encoding without the one-hot blow-up: integer token sequences -> (batch, tokens) 0/1 vectors.

Keras' `CategoryEncoding(output_mode="multi_hot")` is TensorFlow's bincount on TensorFlow, but on the
other backends it builds a (batch, length, tokens) one-hot first and reduces it: for IMDB-shaped input
(batch 512, reviews of ~2,500 tokens, 10,000 words) that asked JAX for 51 GB. This layer scatters a 1
into (row, token) for every token of every row instead, so it never holds more than the (batch, tokens)
output and one (row, token) index pair per input token, on every backend (TensorFlow uses its batched
bincount; PyTorch its `scatter_`, since Keras' torch scatter loops in Python). Same vectors as
CategoryEncoding (tests/test_backends.py) except column 0: token 0 is padding, so its column is always 0,
exactly as in the usual NumPy multi-hot of unpadded sequences (`vectors[i, sequence] = 1`), where Keras'
word indices never include 0. Tokens must lie in [0, num_tokens).

A registered Keras layer (not a Lambda), so `model.keras` loads with `safe_mode=True`. Imports Keras
at module level: import it lazily (dlrun.models.inputs and load_model do).
"""

from __future__ import annotations

from typing import Any

from dlrun import backend

keras: Any = backend.import_keras()  # quietly, on the chosen backend, whoever imports this module first


@keras.saving.register_keras_serializable(package="dlrun")
class MultiHot(keras.layers.Layer):
    """(batch, length) integer tokens -> (batch, num_tokens) float 0/1: 1 where the token occurs in the row."""

    def __init__(self, num_tokens: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_tokens = int(num_tokens)

    def call(self, inputs: Any) -> Any:
        ops = keras.ops
        tokens = ops.cast(inputs, "int32")
        not_padding = ops.cast(ops.arange(self.num_tokens) > 0, self.compute_dtype)  # column 0 is padding
        if keras.backend.backend() == "tensorflow":
            # TensorFlow's own batched bincount: no index pairs at all (the least memory of the two ways)
            import tensorflow as tf

            present = tf.math.bincount(
                tokens, minlength=self.num_tokens, maxlength=self.num_tokens, binary_output=True, axis=-1, dtype=self.compute_dtype
            )
            return present * not_padding
        if keras.backend.backend() == "torch":
            # Keras' torch `ops.scatter` adds one index at a time in a Python loop, far too slow for
            # IMDB-sized batches; torch's own scatter_ writes the 1s in one call, holding the output
            # and the tokens only
            present = ops.zeros((ops.shape(tokens)[0], self.num_tokens), dtype=self.compute_dtype)
            return present.scatter_(1, tokens.long(), 1) * not_padding
        batch, length = ops.shape(tokens)[0], ops.shape(tokens)[1]
        rows = ops.reshape(ops.broadcast_to(ops.expand_dims(ops.arange(batch, dtype="int32"), 1), (batch, length)), (-1,))
        indices = ops.stack([rows, ops.reshape(tokens, (-1,))], axis=1)
        ones = ops.ones_like(rows, dtype=self.compute_dtype)
        counts = ops.scatter(indices, ones, (batch, self.num_tokens))  # repeated tokens add up
        return ops.minimum(counts, ops.cast(1, self.compute_dtype)) * not_padding

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.num_tokens)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_tokens": self.num_tokens}
