"""The run layer: typed configs, tuned presets, the training loops, sessions and evaluation.

Pieces, each in its own module:

* :mod:`~trajkit.run.config`: one dataclass per algorithm (its ``train`` fields are the
  keyword arguments of that ``algos.X.train``);
* :mod:`~trajkit.run.presets`: the tuned settings per env (YAML files), resolved into configs;
* :mod:`~trajkit.run.models`: the models each algorithm trains, built from a config;
* :mod:`~trajkit.run.registry`: one line per algorithm: config, model factory, ``train()``;
* :mod:`~trajkit.run.session`: a run directory, seeding, checkpoints and exact resume;
* :mod:`~trajkit.run.on_policy` and :mod:`~trajkit.run.off_policy`: one loop per family;
* :mod:`~trajkit.run.evaluate`: evaluating a checkpoint or run directory;
* :mod:`~trajkit.run.imitation`: behaviour cloning, DAgger and distillation runs (``presets/imitation.yaml``);
* :mod:`~trajkit.run.tune`: hyper-parameter search with Optuna.

This package imports torch only when a run starts, so ``trajkit --help`` is fast.
"""

from trajkit.run.config import OffPolicyConfig, OnPolicyConfig, RunSettings
from trajkit.run.fields import ConfigError
from trajkit.run.presets import ALGOS, config_class, preset_envs, resolve, search_space, to_values

__all__ = [
    "ALGOS",
    "ConfigError",
    "OffPolicyConfig",
    "OnPolicyConfig",
    "RunSettings",
    "config_class",
    "preset_envs",
    "resolve",
    "search_space",
    "to_values",
]
