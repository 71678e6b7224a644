"""Reading a model.keras that dlrun wrote, safely."""

from __future__ import annotations

import os
from typing import Any

from dlrun import backend, errors


def load_model(path: str | os.PathLike, compile: bool = True) -> Any:
    """Load a model.keras that dlrun wrote, with dlrun's layers registered.

    Always in Keras' safe mode: a file holding a `Lambda` layer or any object that is not a registered
    Keras/dlrun class is refused (RunError, exit 2), never executed.
    """
    keras = backend.import_keras()
    from dlrun.models import application_input, multi_hot  # noqa: F401  (registers ApplicationInput, MultiHot)

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # a damaged, foreign or unsafe file: say which, without a traceback
        text = str(error)
        if "Lambda" in text or "safe_mode" in text:
            reason = "it contains code (a Lambda layer), which dlrun never runs from a file"
        elif "Could not locate" in text or "Unknown" in text:
            reason = f"it needs a class this installation does not know ({text.splitlines()[0][:200]})"
        else:
            reason = f"{type(error).__name__}: {text.splitlines()[0][:300] if text else ''}"
        raise errors.RunError(f"{path}: refused to load: {reason}") from None
