"""The experiment config: a typed, validated schema, YAML loading and ``--set`` overrides.

One YAML file describes one experiment in six sections: ``data``
(:mod:`ncf.config.data`), ``model`` (:mod:`ncf.config.model`: the model type, the towers'
shared settings and each family's own section), ``train`` (:mod:`ncf.config.train`),
``eval``, ``export`` and ``run`` (:mod:`ncf.config.experiment`, with :class:`Config`, the
whole). Every section is frozen and forbids unknown keys (:mod:`ncf.schema`), so a typo is
an error that names the key path and the file; reading, overrides and saving are in
:mod:`ncf.config.loading`.
"""

from ncf.config.data import (
    ColumnsConfig,
    DataConfig,
    FeatureTableConfig,
    SplitConfig,
    SyntheticConfig,
)
from ncf.config.experiment import Config, EvalConfig, ExportConfig, RunConfig
from ncf.config.loading import (
    MAX_DEPTH,
    MAX_NODES,
    apply_overrides,
    build_config,
    config_to_dict,
    load_config,
    parse_override,
    read_yaml,
    save_config,
)
from ncf.config.model import ModelConfig
from ncf.config.schema_doc import describe_schema
from ncf.config.train import DistributeConfig, EarlyStoppingConfig, TrainConfig

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "ColumnsConfig",
    "Config",
    "DataConfig",
    "DistributeConfig",
    "EarlyStoppingConfig",
    "EvalConfig",
    "ExportConfig",
    "FeatureTableConfig",
    "ModelConfig",
    "RunConfig",
    "SplitConfig",
    "SyntheticConfig",
    "TrainConfig",
    "apply_overrides",
    "build_config",
    "config_to_dict",
    "describe_schema",
    "load_config",
    "parse_override",
    "read_yaml",
    "save_config",
]
