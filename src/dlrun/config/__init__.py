"""Configs: the schema, reading YAML strictly, `--set` overrides, the JSON schema and docs, the starter.

Reading a config (`dlrun.config.loading`) is what every command does first, so its functions are
re-exported here: `from dlrun import config; config.load(path)`. Nothing heavy is imported: validating
a config never imports TensorFlow, Keras or matplotlib.
"""

from dlrun.config.loading import (  # noqa: F401  (re-exported)
    AUTO_METRICS,
    consistency_problems,
    load,
    load_composed,
    metric_names,
    monitor_names,
    task_has_validation,
    to_data,
    to_yaml,
    validate,
)
