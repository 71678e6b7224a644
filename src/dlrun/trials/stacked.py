"""Copies of one model trained together on JAX, in lockstep: the machinery of the vectorized executor.

A copy (`Copy`) is one fit as the one training function builds it (`dlrun.training.trainer.Training`: its
seed, initial weights, optimizer and compile, restored from its checkpoint on a resume): a K-fold run's
fold (`dlrun.trials.vectorized`) or a sweep's trial (`dlrun.trials.sweep_vectorized`). Each copy's Keras 3
JAX state (trainable, non-trainable incl. dropout seed states, optimizer variables incl. the learning rate
and iteration count, metrics variables) goes through one compiled epoch program (`_programs`: Keras' own
stateless `train_step` under `jax.lax.scan`, then the validation over `test_step`), built once for all
copies and called once per copy and epoch, instead of once per batch as `fit` does. Every copy sees its
own data's batches in its own seeded order (`dlrun.training.batches.seeded`), the last smaller batch kept
as it is (nothing padded), so its numbers are its sequential fit's bit for bit. A resumed copy ahead of
the others, or one that stopped (failed or pruned), is simply not called until the others reach it.

After every epoch the copies' states come to the host in one transfer, and each living copy goes through
its own `recorders.RunRecorder` (history.json, the resume checkpoint, then `on_epoch`), so its folder is
what a sequential fit writes: its checkpoint is written from the host arrays, and its Keras model gets
its variables only once, when the copy ends (assigning every variable of every copy each epoch cost more
than the epoch). A copy whose loss becomes NaN ends with the recorder's NaN stop, and one whose
`on_epoch` raises `TrialPruned` ends pruned, while the others go on (docs/vectorized.md).
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
    # its (trainable, non-trainable, optimizer) values after its last recorded epoch (host arrays, its slice of
    # the stacked state): its checkpoints are written from them, and its model gets them once, at its end
    values: Any = None
    layout: list[int] | None = None  # for each of model.variables, its index in [*trainable, *non_trainable]

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
    """Train the living copies epoch by epoch, in lockstep, one compiled call per copy and epoch; each copy's
    `end` is called once. Should the one program fail, every copy still in it ends with that error; Ctrl-C raises
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
        copy.recorder.save_checkpoint = lambda epochs_completed, copy=copy: _save_checkpoint(copy, epochs_completed)
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
        copy.layout = _layout(model)
    train_epoch = _programs(template)
    names = list(template.get_metrics_result())  # in `fit`'s order (a program's dict comes back sorted)
    states = [_state_of(copy.training.model) for copy in copies]
    validations = [
        None
        if copy.validation is None
        else jax.device_put(_batches(copy.validation[0], copy.validation[1], np.arange(len(copy.validation[1])), VALIDATION_BATCH))
        for copy in copies
    ]
    for epoch in range(min(copy.first_epoch for copy in copies), epochs):
        outputs = {}
        for index, copy in enumerate(copies):
            if not copy.alive or epoch < copy.first_epoch:  # stopped, or resumed ahead of the others: it waits
                continue
            order = np.concatenate(_epoch_order(copy, batch_size, epoch))
            states[index], losses, results, validated = train_epoch(
                states[index], _batches(copy.train_x, copy.train_y, order, batch_size), validations[index]
            )
            outputs[index] = (states[index][:3], losses, results, validated)
        # one transfer per epoch (the calls above only queue work): the copies' records read host arrays
        for index, (values, losses, results, validated) in jax.device_get(outputs).items():
            logs = {name: float(results[name]) for name in names}
            logs.update({f"val_{name}": float(validated[name]) for name in names if name in validated})
            _end_epoch(copies[index], epoch, values, logs, losses, started)


def _end_epoch(copy: Copy, epoch: int, values: Any, logs: dict, losses: Any, started: float) -> None:
    """One copy's epoch end, as a sequential fit has it: the NaN stop (`losses`: the running loss after each
    step, as `fit`'s batch logs have it), the recorder (history.json, the checkpoint written from `values`,
    `on_epoch`, which may prune it), and at the last epoch its end."""
    import numpy as np

    recorder = copy.recorder
    recorder.on_epoch_begin(epoch)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        step = int(bad[0])
        recorder.non_finite = f"loss became {float(losses[step])} at epoch {epoch + 1}, batch {step + 1}"
    if recorder.non_finite is None:
        previous, copy.values = copy.values, values
        try:
            recorder.on_epoch_end(epoch, logs)
        except errors.TrialPruned as pruned:  # the pruner stopped it: its state stays frozen from now on
            _end(copy, pruned, started)
            return
        if recorder.non_finite is not None:  # a non-finite metric: this epoch is not recorded, nor its state kept
            copy.values = previous
    if recorder.non_finite is not None:
        _end(copy, recorder.stopped(), started)
    elif epoch + 1 == copy.training.plan.total_epochs:
        _end(copy, None, started)


def _end(copy: Copy, error: BaseException | None, started: float) -> None:
    """The copy's end: its model gets the values of its last recorded epoch (once), then `end` is called."""
    copy.alive = False
    copy.recorder.close()
    if copy.values is not None:
        _assign(copy.training.model, copy.values)
    copy.end(error, round(time.perf_counter() - started, 3))


def _assign(model: Any, values: tuple) -> None:
    trainable, non_trainable, optimizer = values
    variables = [*model.trainable_variables, *model.non_trainable_variables, *model.optimizer.variables]
    for variable, value in zip(variables, [*trainable, *non_trainable, *optimizer]):
        variable.assign(value)


def _layout(model: Any) -> list[int] | None:
    """Where each of `model.variables` (the checkpoint's order) sits in the stacked [*trainable, *non_trainable]
    values, or None when one is in neither (its checkpoint is then written through the model)."""
    where = {id(variable): index for index, variable in enumerate([*model.trainable_variables, *model.non_trainable_variables])}
    found = [where.get(id(variable)) for variable in model.variables]
    return None if None in found else [index for index in found if index is not None]


def _save_checkpoint(copy: Copy, epochs_completed: int) -> Path:
    """The copy's checkpoint after `epochs_completed`, written from its values (what `checkpoints.save` writes)."""
    from dlrun.training import checkpoints

    trainable, non_trainable, optimizer = copy.values
    if copy.layout is None:
        _assign(copy.training.model, copy.values)
        return checkpoints.save(copy.folder, copy.training.model, epochs_completed)
    flat = [*trainable, *non_trainable]
    return checkpoints.save_arrays(copy.folder, [flat[index] for index in copy.layout], optimizer, epochs_completed)


def _epoch_order(copy: Copy, batch_size: int, epoch: int) -> list:
    """The sample indices of each of the copy's batches in `epoch`, in the seeded order its fit would use."""
    import numpy as np

    from dlrun.training import batches

    indices = np.arange(len(copy.train_y))
    shuffle = copy.training.config.train.shuffle
    return [index for index, _ in batches.seeded(indices, indices, batch_size, copy.training.config.seed, epoch, epoch + 1, shuffle)]


def _batches(inputs: np.ndarray, targets: np.ndarray, order: np.ndarray, batch_size: int) -> tuple[tuple, tuple | None]:
    """`order`'s samples as `fit` batches them: ((inputs, targets) of the full batches, stacked (steps, batch,
    ...)), and the last, smaller batch (inputs, targets) or None. Nothing is padded: every batch is the one
    `fit` trains on, so every copy's arithmetic is its sequential fit's."""
    full = len(order) // batch_size * batch_size
    head, tail = order[:full], order[full:]
    stacked = (inputs[head].reshape(-1, batch_size, *inputs.shape[1:]), targets[head].reshape(-1, batch_size, *targets.shape[1:]))
    return stacked, ((inputs[tail], targets[tail]) if len(tail) else None)


def _state_of(model: Any) -> tuple:
    return tuple(
        [variable.value for variable in variables]
        for variables in (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables, model.metrics_variables)
    )


def _programs(model: Any) -> Callable[..., Any]:
    """One copy's compiled epoch program, built from Keras' own stateless steps (the JAX trainer's
    `train_step` and `test_step`, which `fit` compiles and calls once per batch): `train_epoch(state,
    batches, validation) -> (state, the running loss after each step, metrics results, validation metrics
    results)`, `batches` and `validation` (or None) as `_batches` cuts them; the state's metrics variables
    go in, and come back, reset, as `fit` resets them before every epoch and every validation. Not vmapped:
    a batched matrix product over the copies rounds differently from a copy's own, and over 80 epochs such
    differences grew to percents; a copy's program here runs the very operations of its sequential fit, so
    its numbers are the sequential fit's to the bit (one compile per batch shape, shared by the copies)."""
    import jax
    import jax.numpy as jnp

    def results(metrics_variables: list[Any]) -> dict[str, Any]:
        # `get_metrics_result` (what `fit` logs) for these metrics variables.
        from keras.src import backend as keras_backend

        with keras_backend.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))):
            return model.get_metrics_result()

    def train_step(state: tuple, batch: tuple) -> tuple[Any, Any]:
        logs, state = model.train_step(state, batch)
        return state, logs["loss"]

    def test_step(state: tuple, batch: tuple) -> tuple[Any, None]:
        _logs, state = model.test_step(state, batch)
        return state, None

    @jax.jit
    def train_epoch(state: tuple, batches: tuple, validation: tuple | None) -> tuple[Any, Any, Any, Any]:
        reset = state[3]
        (full, last), validated = batches, {}
        state, losses = jax.lax.scan(train_step, state, full)
        if last is not None:
            state, loss = train_step(state, last)
            losses = jnp.concatenate([losses, loss[None]])
        if validation is not None:
            (full, last), tested = validation, (state[0], state[1], reset)
            tested, _ = jax.lax.scan(test_step, tested, full)
            if last is not None:
                tested, _ = test_step(tested, last)
            validated = results(tested[2])
        return (*state[:3], reset), losses, results(state[3]), validated

    return train_epoch
