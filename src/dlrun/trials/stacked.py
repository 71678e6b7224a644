"""Stacked copies of one model trained as one JAX program: the machinery of the vectorized executor.

A copy (`Copy`) is one fit as the one training function builds it (`dlrun.training.trainer.Training`: its
seed, initial weights, optimizer and compile, restored from its checkpoint on a resume): a K-fold run's
fold (`dlrun.trials.vectorized`) or a sweep's trial (`dlrun.trials.sweep_vectorized`). Their Keras 3 JAX
states (trainable, non-trainable incl. dropout seed states, optimizer variables incl. the learning rate
and iteration count, and metrics variables) are stacked, and Keras' stateless pieces of
`train_step`/`test_step` (`compute_loss_and_updates`, `optimizer.stateless_apply`, the metrics update)
run under `jax.vmap` over the copies, one epoch per compiled call (`jax.lax.scan` over the steps). Every
copy sees its own data's batches in its own seeded order (`dlrun.training.batches.seeded`). Every batch
is padded to `train.batch_size`: padded samples get weight 0 and real ones `padded / real`, so a copy's
loss is the mean over its real samples, and the loss and metrics trackers count real samples only. A
copy with fewer steps in an epoch, a resumed copy still ahead of the others, or a copy that stopped
(failed or pruned) keeps its state unchanged (`jnp.where` per leaf, the optimizer's iteration count
included).

After every epoch each living copy's variables go back into its Keras model and through its own
`recorders.RunRecorder` (history.json, the resume checkpoint, then `on_epoch`), so its folder is what a
sequential fit writes. A copy whose loss becomes NaN ends with the recorder's NaN stop, and one whose
`on_epoch` raises `TrialPruned` ends pruned, while the others go on. Numbers equal a sequential fit's to
about 1e-5, not bit for bit: the padded reductions and the scanned program round differently
(docs/vectorized.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import errors

if TYPE_CHECKING:
    import numpy as np

    from dlrun.training import trainer

# What Keras' `fit` uses for validation arrays when it is given a generator and no batch_size (the
# trainer's case): the array adapter's default. The same batches give the same float sums.
VALIDATION_BATCH = 32

End = Callable[[BaseException | None, float], None]  # end(None or why it stopped, seconds since the program started)


@dataclasses.dataclass(eq=False)
class Copy:
    """One fit trained as a copy: its Training, its folder, the epoch it starts after, who hears its epochs
    (`on_epoch(epochs_completed, logs)`, which may raise TrialPruned) and its end, called once: `end(None,
    seconds)` after its last epoch, `end(error, seconds)` when it stopped (NaN: TrainingFailed; TrialPruned)."""

    training: trainer.Training
    folder: Path
    first_epoch: int
    on_epoch: Callable[[int, dict], None]
    end: End
    alive: bool = True
    recorder: Any = None  # its recorders.RunRecorder (a Keras callback), once training starts

    def __post_init__(self) -> None:
        data = self.training.plan.data
        self.train_x, self.train_y = data.split("train")
        self.validation = data.split("validation")


def model_reason(training: trainer.Training) -> str | None:
    """Why this fold's model or data cannot train as a copy, or None when it can."""
    import numpy as np

    if len(training.plan.phases) != 1:
        return f"{len(training.plan.phases)} training phases (model.fine_tune)"
    arrays = [training.plan.data.split(name) for name in ("train", "validation")]
    if not all(isinstance(split, tuple) and all(isinstance(part, np.ndarray) for part in split) for split in arrays):
        return "a streamed or multi-input split; it needs in-memory arrays"
    outputs = len(getattr(training.model, "outputs", None) or [])
    if outputs != 1:
        return f"a model with {outputs} outputs; it needs one"
    if any(type(layer).__name__ == "BatchNormalization" for layer in training.model._flatten_layers()):
        return "a BatchNormalization layer mixes a batch's samples, padded batches would change it"
    return None


def evaluate_together(copies: list[Copy], split: str = "test") -> list[tuple[dict[str, float], np.ndarray]]:
    """Each copy's model on its own `split`, through one compiled program built once for all the copies: (its
    metrics as `model.evaluate(..., return_dict=True)` gives them, its outputs as `model.predict` gives them,
    in the split's order), from the models' variables now, in batches of `train.batch_size` as
    `dlrun.training.evaluation.report` cuts them. The program runs Keras' own stateless `test_step` and
    `predict_step`; evaluated one by one, every model would trace and compile its own test and predict
    functions (0.5 s a model, where an MLP's trial trains in about as long)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from keras.src import backend as keras_backend

    template, batch_size = copies[0].training.model, copies[0].training.config.train.batch_size

    def step(state: tuple, batch: tuple) -> tuple[tuple, Any]:
        outputs, _non_trainable = template.predict_step(state[:2], batch[:1])
        _logs, state = template.test_step(state, batch)
        return state, outputs

    @jax.jit
    def evaluate(state: tuple, full: tuple | None, last: tuple | None) -> tuple[dict, Any]:
        outputs = []
        if full is not None:  # the whole batches, scanned; then the smaller last one
            state, scanned = jax.lax.scan(step, state, full)
            outputs.append(scanned.reshape(-1, *scanned.shape[2:]))
        if last is not None:
            state, tail = step(state, last)
            outputs.append(tail)
        with keras_backend.StatelessScope(state_mapping=list(zip(template.metrics_variables, state[2]))):
            return template.get_metrics_result(), jnp.concatenate(outputs)

    evaluated = []
    for copy in copies:
        model = copy.training.model
        x, y = copy.training.plan.data.split(split)
        model._symbolic_build(data_batch=(x[:1], y[:1]))  # its compiled metrics' variables, as evaluate builds them
        model.reset_metrics()
        state = tuple(
            [variable.value for variable in variables]
            for variables in (model.trainable_variables, model.non_trainable_variables, model.metrics_variables)
        )
        cut = len(y) - len(y) % batch_size
        full = (x[:cut].reshape(-1, batch_size, *x.shape[1:]), y[:cut].reshape(-1, batch_size, *y.shape[1:])) if cut else None
        results, outputs = jax.device_get(evaluate(state, full, (x[cut:], y[cut:]) if cut < len(y) else None))
        evaluated.append(({name: float(value) for name, value in results.items()}, np.asarray(outputs)))
    return evaluated


def train_together(copies: list[Copy]) -> None:
    """Train every epoch of every living copy in one compiled call per epoch; each copy's `end` is called
    once. Should the one program fail, every copy still in it ends with that error; Ctrl-C raises
    KeyboardInterrupt with the living copies not ended."""
    import jax
    import numpy as np

    from dlrun.training import recorders

    if not copies:
        return
    started = time.perf_counter()
    for copy in copies:
        training = copy.training
        copy.folder.mkdir(parents=True, exist_ok=True)
        copy.recorder = recorders.RunRecorder(copy.folder, training.history, training.config.output.resume_checkpoints, copy.on_epoch)
        training.history = copy.recorder.history
        copy.recorder.set_model(training.model)
        if copy.first_epoch >= training.plan.total_epochs:  # killed after its last checkpoint, before its outcome
            _end(copy, None, started)
    try:
        _epochs(copies, started, jax, np)
    except (KeyboardInterrupt, errors.Interrupted):
        raise KeyboardInterrupt from None
    except Exception as error:  # the one program failed: so does every copy still in it
        for copy in copies:
            if copy.alive:
                _end(copy, error, started)


def _epochs(copies: list[Copy], started: float, jax: Any, np: Any) -> None:
    template = copies[0].training.model
    config = copies[0].training.config
    batch_size, epochs = config.train.batch_size, copies[0].training.plan.total_epochs
    sample = (copies[0].train_x[:1], copies[0].train_y[:1])
    for copy in copies:
        model = copy.training.model
        model._symbolic_build(data_batch=sample)  # the compiled metrics' variables, as fit builds them
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.reset_metrics()
    train_epoch, validate = _programs(template)
    names = list(template.get_metrics_result())  # in `fit`'s order (a program's dict comes back sorted)
    state = _stack([_state_of(copy.training.model) for copy in copies])
    reset_metrics = state[3]
    validation = (
        _padded([(copy.validation[0], copy.validation[1], np.arange(len(copy.validation[1]))) for copy in copies], VALIDATION_BATCH)
        if copies[0].validation is not None
        else None
    )
    for epoch in range(min(copy.first_epoch for copy in copies), epochs):
        active = np.array([copy.alive and epoch >= copy.first_epoch for copy in copies])
        if not active.any():
            continue
        orders = [_epoch_order(copy, batch_size, epoch) for copy in copies]
        inputs, targets, weights, masks, counts = _padded(
            [(copy.train_x, copy.train_y, order) for copy, order in zip(copies, orders)], batch_size
        )
        steps_active = (counts > 0) & active[None, :]
        state, losses, results = train_epoch(state, (inputs, targets, weights, masks, counts, steps_active))
        logs = [{name: results[name][index] for name in names} for index in range(len(copies))]
        if validation is not None:
            results = validate((state[0], state[1], reset_metrics), validation)
            for index, copy_logs in enumerate(logs):
                copy_logs.update({f"val_{name}": results[name][index] for name in names})
        host_state, logs, losses = jax.device_get((state[:3], logs, losses))
        for index, copy in enumerate(copies):
            if active[index]:
                _end_epoch(copy, index, epoch, host_state, logs[index], losses[:, index], steps_active[:, index], started)
        state = (*state[:3], reset_metrics)


def _end_epoch(copy: Copy, index: int, epoch: int, host_state: Any, logs: dict, losses: Any, steps_active: Any, started: float) -> None:
    """One copy's epoch end, as a sequential fit has it: the NaN stop, the recorder (and `on_epoch`, which may
    prune it), and at the last epoch its end."""
    import math

    model, recorder = copy.training.model, copy.recorder
    recorder.on_epoch_begin(epoch)
    for step in [step for step in range(len(losses)) if steps_active[step]]:
        if not math.isfinite(float(losses[step])):
            recorder.non_finite = f"loss became {float(losses[step])} at epoch {epoch + 1}, batch {step + 1}"
            break
    if recorder.non_finite is None:
        trainable, non_trainable, optimizer = ([leaf[index] for leaf in part] for part in host_state)
        for variable, value in zip(
            [*model.trainable_variables, *model.non_trainable_variables, *model.optimizer.variables],
            [*trainable, *non_trainable, *optimizer],
        ):
            variable.assign(value)
        try:
            recorder.on_epoch_end(epoch, {name: float(value) for name, value in logs.items()})
        except errors.TrialPruned as pruned:  # the pruner stopped it: its state stays frozen from now on
            _end(copy, pruned, started)
            return
    if recorder.non_finite is not None:
        _end(copy, recorder.stopped(), started)
    elif epoch + 1 == copy.training.plan.total_epochs:
        _end(copy, None, started)


def _end(copy: Copy, error: BaseException | None, started: float) -> None:
    copy.alive = False
    copy.end(error, round(time.perf_counter() - started, 3))


def _epoch_order(copy: Copy, batch_size: int, epoch: int) -> list:
    """The sample indices of each of the copy's batches in `epoch`, in the seeded order its fit would use."""
    import numpy as np

    from dlrun.training import batches

    indices = np.arange(len(copy.train_y))
    shuffle = copy.training.config.train.shuffle
    return [index for index, _ in batches.seeded(indices, indices, batch_size, copy.training.config.seed, epoch, epoch + 1, shuffle)]


def _padded(parts: list[tuple], batch_size: int) -> tuple[np.ndarray, ...]:
    """Stacked (steps, copies, batch, ...) inputs, targets, weights, masks and real counts (steps, copies)
    for each copy's (inputs, targets, order): `order` a list of per-batch indices, or one index array cut
    into consecutive batches. Padded rows repeat sample 0 with weight 0."""
    import numpy as np

    orders = [
        order if isinstance(order, list) else [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        for _inputs, _targets, order in parts
    ]
    steps, copies = max(len(order) for order in orders), len(parts)
    inputs0, targets0 = parts[0][0], parts[0][1]
    inputs = np.zeros((steps, copies, batch_size, *inputs0.shape[1:]), dtype=inputs0.dtype)
    targets = np.zeros((steps, copies, batch_size, *targets0.shape[1:]), dtype=targets0.dtype)
    weights = np.zeros((steps, copies, batch_size), dtype="float32")
    masks = np.zeros((steps, copies, batch_size), dtype="float32")
    counts = np.zeros((steps, copies), dtype="int32")
    for copy, ((copy_inputs, copy_targets, _order), order) in enumerate(zip(parts, orders)):
        for step, index in enumerate(order):
            real = len(index)
            inputs[step, copy, :real], targets[step, copy, :real] = copy_inputs[index], copy_targets[index]
            weights[step, copy, :real] = batch_size / real
            masks[step, copy, :real] = 1.0
            counts[step, copy] = real
    return inputs, targets, weights, masks, counts


def _state_of(model: Any) -> tuple:
    return tuple(
        [variable.value for variable in variables]
        for variables in (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables, model.metrics_variables)
    )


def _stack(states: list[tuple]) -> Any:
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def _programs(model: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The compiled epoch programs over stacked copies, built from `model`'s stateless Keras pieces:
    `train_epoch(state, batches) -> (state, per-step losses, metrics results)` and `validate(state, batches)
    -> metrics results` (each result a (copies,) array)."""
    import jax
    import jax.numpy as jnp

    def update_metrics(
        metrics_variables: list[Any], loss: Any, inputs: Any, targets: Any, predictions: Any, mask: Any, count: Any
    ) -> list[Any]:
        # Keras' `_update_metrics_variables` and `compute_metrics`, counting the real samples only (they
        # count inputs.shape[0], and compiled `metrics`, unlike `weighted_metrics`, take no sample weights).
        from keras.src import backend as keras_backend

        compiled = model._compile_metrics
        with keras_backend.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))) as scope:
            model._loss_tracker.update_state(loss, sample_weight=count)
            for metrics in [] if compiled is None else [*compiled._flat_metrics, *compiled._flat_weighted_metrics]:
                if metrics:
                    metrics.update_state(targets, predictions, sample_weight=mask)
        return [
            scope.get_current_value(reference) if scope.get_current_value(reference) is not None else value
            for reference, value in zip(model.metrics_variables, metrics_variables)
        ]

    def results(metrics_variables: list[Any]) -> dict[str, Any]:
        # `get_metrics_result` (what `fit` logs) for these metrics variables.
        from keras.src import backend as keras_backend

        with keras_backend.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))):
            return model.get_metrics_result()

    def kept(active: Any, new: Any, old: Any) -> Any:
        return jax.tree.map(lambda new_leaf, old_leaf: jnp.where(active, new_leaf, old_leaf), new, old)

    def train_step(state: tuple, batch: tuple) -> tuple[Any, Any]:
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        inputs, targets, weights, mask, count, active = batch
        gradient = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
        (_loss, (loss, predictions, new_non_trainable, new_metrics)), gradients = gradient(
            trainable, non_trainable, metrics_variables, inputs, targets, weights, training=True, optimizer_variables=optimizer_variables
        )
        new_trainable, new_optimizer = model.optimizer.stateless_apply(optimizer_variables, gradients, trainable)
        new_metrics = update_metrics(new_metrics, loss, inputs, targets, predictions, mask, count)
        return kept(active, (new_trainable, new_non_trainable, new_optimizer, new_metrics), state), loss

    def test_step(state: tuple, batch: tuple) -> tuple[Any, None]:
        trainable, non_trainable, metrics_variables = state
        inputs, targets, weights, mask, count = batch
        _loss, (loss, predictions, _non_trainable, new_metrics) = model.compute_loss_and_updates(
            trainable, non_trainable, metrics_variables, inputs, targets, weights, training=False
        )
        new_metrics = update_metrics(new_metrics, loss, inputs, targets, predictions, mask, count)
        return (trainable, non_trainable, kept(count > 0, new_metrics, metrics_variables)), None

    @jax.jit
    def train_epoch(state: tuple, batches: tuple) -> tuple[Any, Any, Any]:
        state, losses = jax.lax.scan(lambda carry, batch: jax.vmap(train_step)(carry, batch), state, batches)
        return state, losses, jax.vmap(results)(state[3])

    @jax.jit
    def validate(state: tuple, batches: tuple) -> Any:
        state, _ = jax.lax.scan(lambda carry, batch: jax.vmap(test_step)(carry, batch), state, batches)
        return jax.vmap(results)(state[2])

    return train_epoch, validate
