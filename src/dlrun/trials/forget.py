"""What Keras and TensorFlow keep in a process after a trial, and dropping it before the next one.

Every executor that trains several trials in one process (a pool worker, the sequential executor) calls
`since(registered)` after each task, with the `gradient_registry()` names taken before it: without it a
process grows with every trial (the leak class of keras-tuner#395; BENCHMARKS.md "Memory over 100 sweep
trials").
"""

from __future__ import annotations


def since(registered: set[str] | frozenset[str] = frozenset()) -> None:
    """Clear Keras' session, and forget the custom gradients TensorFlow registered since `registered`.

    TensorFlow registers each `tf.custom_gradient` traced in a graph under a new name (`CustomGradient-N`)
    in its process-wide gradient registry and never removes it; the entry holds the traced graph. Keras'
    optimizer all-reduces the gradients through one (`tf.distribute`'s `all_reduce`) in every trace of a
    train function, so without this each trial left its whole train graph behind (about 1.4 MiB a tiny
    trial, BENCHMARKS.md "Memory over 100 sweep trials"). Once the session is cleared nothing can
    differentiate through those graphs again.
    """
    import gc
    import sys

    if "keras" in sys.modules:
        clear_session = sys.modules["keras"].backend.clear_session
        try:
            clear_session(free_memory=False)  # one garbage collection below is enough (each costs ~0.3 s here)
        except TypeError:  # a Keras without the option
            clear_session()
    registry = gradient_registry()
    for name in [name for name in registry if name.startswith("CustomGradient-") and name not in registered]:
        del registry[name]
    gc.collect()


def gradient_registry() -> dict:
    """TensorFlow's gradient registry (name -> entry) where TensorFlow 2.x keeps it; empty without TensorFlow."""
    import sys

    module = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(module, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else {}
