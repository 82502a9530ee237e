from pathlib import Path

import pytest
import yaml

from ncf.config import Config, apply_overrides, describe_schema, load_config, save_config
from ncf.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_defaults_file_and_set_precedence(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  batch_size: 64\n")
    config = load_config(path, ["train.batch_size=512", "model.mlp_layers=[16, 8]"])
    assert config.train.epochs == 3  # file beats default
    assert config.train.batch_size == 512  # --set beats file
    assert config.model.mlp_layers == [16, 8]
    assert config.train.learning_rate == Config().train.learning_rate  # default kept
    assert config.run.name == "exp"


def test_unknown_key_names_path_and_file(tmp_path):
    path = write(tmp_path, "train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: train.epochz: unknown key"):
        load_config(path)


def test_unknown_override_key(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(ConfigError, match=r"model.embeding_dim: unknown key"):
        load_config(path, ["model.embeding_dim=4"])


def test_a_flow_mapping_without_spaces_says_yaml_needs_them(tmp_path):
    path = write(tmp_path, "")
    expected = r"data.columns.user:user_id: unknown key \(YAML needs a space after the colon: user: user_id\)"
    with pytest.raises(ConfigError, match=expected):
        load_config(path, ["data.columns={user:user_id, item: movie}"])
    assert (
        load_config(path, ["data.columns={user: user_id, item: movie}"]).data.columns.user
        == "user_id"
    )


def test_wrong_type_and_impossible_values(tmp_path):
    path = write(tmp_path, "train:\n  batch_size: -5\n")
    with pytest.raises(ConfigError, match=r"train.batch_size: Input should be greater than 0"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"train.epochs"):
        load_config(write(tmp_path, "train:\n  epochs: many\n"))


def test_k_larger_than_catalogue(tmp_path):
    path = write(
        tmp_path,
        "data:\n  synthetic:\n    items: 50\neval:\n  k: [10, 100]\n  sampled_negatives: 20\n",
    )
    with pytest.raises(ConfigError, match=r"eval.k=100 is larger than the catalogue \(50 items\)"):
        load_config(path)


def test_malformed_yaml_names_line(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  batch_size: [1, 2\n")
    with pytest.raises(
        ConfigError, match=r"exp.yaml: line \d+, column \d+: malformed YAML: .*starts at line 3"
    ):
        load_config(path)


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(write(tmp_path, ""), ["train.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"train": {"epochs": 3}}, ["train.epochs.x=1"])


def test_override_values_are_yaml_not_code(tmp_path):
    config = load_config(write(tmp_path, ""), ["run.name=__import__('os')"])
    assert config.run.name == "__import__('os')"


def test_saved_config_loads_equal(tmp_path):
    config = load_config(write(tmp_path, "model:\n  type: gmf\n"), ["train.epochs=2"])
    saved = tmp_path / "run" / "config.yaml"
    save_config(config, saved)
    assert load_config(saved) == config
    assert yaml.safe_load(saved.read_text())["model"]["type"] == "gmf"


def test_sampled_softmax_draws_by_popularity_unless_told_otherwise(tmp_path):
    best = REPO / "configs" / "ml-100k" / "best.yaml"
    assert load_config(best).train.negative_sampling == "uniform"  # the full softmax draws nothing
    sampled = load_config(best, ["train.loss=sampled_softmax"])
    assert sampled.train.negative_sampling == "popularity"
    save_config(sampled, tmp_path / "config.yaml")  # the run directory's copy says so
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["negative_sampling"] == (
        "popularity"
    )
    told = ["train.loss=sampled_softmax", "train.negative_sampling=uniform"]
    assert load_config(best, told).train.negative_sampling == "uniform"


def test_model_rules(tmp_path):
    with pytest.raises(ConfigError, match="must be even"):
        load_config(write(tmp_path, "model:\n  mlp_layers: [33, 8]\n"))
    with pytest.raises(ConfigError, match="needs both gmf and mlp"):
        load_config(write(tmp_path, "model:\n  pretrained:\n    gmf: runs/x\n"))


def test_shipped_configs_validate():
    paths = sorted((REPO / "configs").rglob("*.yaml"))
    assert paths
    for path in paths:
        load_config(path)


def test_the_large_neumf_config_is_the_ml100k_one_with_the_batch_and_rate_scaled():
    """configs/large/neumf.yaml was validated as exactly this change (docs/benchmarks.md)."""
    small = load_config(REPO / "configs" / "ml-100k" / "neumf.yaml")
    large = load_config(REPO / "configs" / "large" / "neumf.yaml")
    assert large.model == small.model and large.eval.protocols == small.eval.protocols
    assert large.train.batch_size == 4 * small.train.batch_size
    assert large.train.learning_rate == pytest.approx(2 * small.train.learning_rate)
    others = {"batch_size", "learning_rate"}
    assert {k: v for k, v in vars(large.train).items() if k not in others} == {
        k: v for k, v in vars(small.train).items() if k not in others
    }


def test_config_reference_is_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "config_docs", REPO / "scripts" / "config_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (REPO / "configs" / "README.md").read_text()
    assert readme == module.render(), (
        "configs/README.md is stale: run python scripts/config_docs.py"
    )
    for line in describe_schema().splitlines():
        if line.startswith("- `"):
            assert line in readme


def test_a_run_config_written_before_the_knn_section_still_loads(tmp_path, caplog):
    """Runs saved by ncf before ``model.knn`` existed hold ``model.neighbours`` and friends."""
    legacy = Path(__file__).parent / "data" / "legacy-config-itemknn-0.2.yaml"
    config = load_config(legacy, saved=True)
    assert config.model.type == "itemknn" and config.model.knn.neighbours == 7
    assert config.model.knn.shrinkage == 0.0 and config.model.knn.weighting == "binary"
    assert not caplog.records  # a run's own saved config is read silently
    mine = write(tmp_path, "model:\n  type: content\n  neighbours: 9\n")
    with caplog.at_level("WARNING"):
        assert load_config(mine).model.content.neighbours == 9
    assert "model.neighbours moved" in caplog.text
    both = write(tmp_path, "model:\n  neighbours: 9\n  knn:\n    neighbours: 3\n")
    with pytest.raises(ConfigError, match="keep knn.neighbours"):
        load_config(both)
