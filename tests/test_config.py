from pathlib import Path

import pytest

from wealtharena.config import Config, ServiceSettings, config_from_dict, load_config, redact_url, resolve_config_path
from wealtharena.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_shipped_configs_load_and_bare_names_resolve():
    default = load_config("default")
    production = load_config("production_config.yaml")
    assert default.name == "default" and production.name == "production"
    assert resolve_config_path("production_config.yaml").parent.name == "config"
    assert [a.profile for a in production.agents].count("aggressive") == 2
    assert production.profile_risk("conservative").max_position == 0.10
    assert production.profile_risk("balanced").max_position == 0.15


def test_the_default_config_file_is_the_schemas_default_run():
    """`Config()` is config/default.yaml's run: the file only names what it shows."""
    assert load_config("default").model_dump() == Config().model_dump()


def test_every_key_is_documented_and_the_reference_is_current():
    from wealtharena.config import PROJECT_ROOT, markdown_reference, reference

    missing = [key for key, _, text in reference() if not text]
    assert missing == []
    assert (PROJECT_ROOT / "docs" / "configuration.md").read_text() == markdown_reference(), (
        "docs/configuration.md is stale: python -m wealtharena.config > docs/configuration.md"
    )


def test_missing_config_file_lists_available_names():
    with pytest.raises(ConfigError, match=r"not found.*default\.yaml"):
        load_config("no_such_config.yaml")


def test_unknown_key_is_named_with_suggestion(tmp_path):
    path = _write(tmp_path, "risk:\n  max_postion: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text and "risk.max_postion" in text and "Did you mean 'max_position'" in text


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"training\.iterations.*'many'"):
        load_config(_write(tmp_path, "training:\n  iterations: many\n"))


def test_negative_cost_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"env\.execution\.commission_bps.*greater than or equal to 0"):
        load_config(_write(tmp_path, "env:\n  execution:\n    commission_bps: -1\n"))


def test_splits_out_of_order_are_rejected(tmp_path):
    text = (
        "data:\n  splits:\n    train: {start: 2000-01-01, end: 2016-12-31}\n"
        "    validation: {start: 2015-01-01, end: 2018-12-31}\n"
    )
    with pytest.raises(ConfigError, match=r"data\.splits.*train ends 2016-12-31 but validation starts 2015-01-01"):
        load_config(_write(tmp_path, text))


def test_split_start_after_end_is_rejected():
    with pytest.raises(ConfigError, match=r"data\.splits\.test.*start 2023-01-01 is after end 2022-01-01"):
        config_from_dict({"data": {"splits": {"test": {"start": "2023-01-01", "end": "2022-01-01"}}}})


def test_limit_above_one_is_rejected():
    with pytest.raises(ConfigError, match=r"risk\.max_position.*less than or equal to 1"):
        config_from_dict({"risk": {"max_position": 1.5}})


def test_halt_below_drawdown_limit_is_rejected():
    with pytest.raises(ConfigError, match=r"halt_drawdown 0\.1 is below max_drawdown 0\.15"):
        config_from_dict({"risk": {"halt_drawdown": 0.1}})


def test_agent_with_unknown_profile_is_named():
    with pytest.raises(ConfigError, match=r"agent 'x_0' has profile 'reckless'"):
        config_from_dict({"agents": [{"id": "x_0", "profile": "reckless"}]})


def test_profile_risk_overrides_are_typed_checked_once_and_only_what_is_set_is_kept():
    with pytest.raises(ConfigError, match=r"profiles\.balanced\.risk\.stop_los: unknown key. Did you mean 'stop_loss'"):
        config_from_dict({"profiles": {"balanced": {"risk": {"stop_los": 0.1}}}})
    with pytest.raises(
        ConfigError, match=r"profiles\.balanced\.risk\.max_position: Input should be less than or equal"
    ):
        config_from_dict({"profiles": {"balanced": {"risk": {"max_position": 2.0}}}})
    with pytest.raises(ConfigError, match=r"profiles\.balanced\.risk: max_position 0\.5 is above max_leverage 0\.4"):
        config_from_dict({"profiles": {"balanced": {"risk": {"max_position": 0.5, "max_leverage": 0.4}}}})
    with pytest.raises(ConfigError, match=r"\['var_lookback'\] are shared by all agents"):
        config_from_dict({"profiles": {"balanced": {"risk": {"var_lookback": 100}}}})
    cfg = config_from_dict({"profiles": {"balanced": {"risk": {"vol_target": None, "stop_loss": 0.05}}}})
    assert cfg.profile_risk("balanced") is cfg.profile_risk("balanced")  # resolved once, with the config
    assert cfg.profile_risk("balanced").vol_target is None and cfg.profile_risk("balanced").stop_loss == 0.05
    assert cfg.model_dump(mode="json")["profiles"]["balanced"]["risk"] == {"vol_target": None, "stop_loss": 0.05}
    assert config_from_dict(cfg.model_dump(mode="json")) == cfg  # the dump reads back to the same config


def test_csv_provider_needs_its_section():
    with pytest.raises(ConfigError, match=r"provider 'csv' needs a 'csv' section"):
        config_from_dict({"data": {"provider": "csv"}})


def test_invalid_yaml_names_file(tmp_path):
    path = _write(tmp_path, "data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: not valid YAML"):
        load_config(path)


def test_dotted_overrides_apply_and_are_validated(tmp_path):
    path = _write(tmp_path, "name: mine\n")
    cfg = load_config(path, {"training.algorithm": "sac", "data.tickers": ["aapl", "msft"]})
    assert cfg.training.algorithm == "sac" and cfg.data.tickers == ["AAPL", "MSFT"]
    with pytest.raises(ConfigError, match=r"training\.algorithm"):
        load_config(path, {"training.algorithm": "dqn"})


def test_fingerprint_is_stable_and_sensitive():
    assert Config().fingerprint() == Config().fingerprint()
    assert Config().fingerprint() != config_from_dict({"seed": 1}).fingerprint()


def test_secrets_come_from_environment_and_are_never_shown(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "sk-very-secret")
    monkeypatch.setenv("REDIS_URL", "redis://user:hunter2@cache:6379/0")
    settings = ServiceSettings.from_env()
    assert settings.wandb_api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    assert redact_url(settings.redis_url) == "redis://user:***@cache:6379/0"
    assert "hunter2" not in Config().model_dump_json()


def test_overrides_never_change_the_callers_dict():
    from wealtharena.config import coerce_config

    raw = {"env": {"episode_length": 100}}
    cfg = coerce_config(raw, {"env.episode_length": 5})
    assert cfg.env.episode_length == 5 and raw == {"env": {"episode_length": 100}}


def test_a_recorded_config_takes_overrides_on_a_copy():
    recorded = Config(seed=3).model_dump(mode="json")
    cfg = config_from_dict(recorded, source="ckpt", overrides={"training.iterations": 7})
    assert cfg.training.iterations == 7 and cfg.seed == 3
    assert recorded["training"]["iterations"] == Config().training.iterations
    with pytest.raises(ConfigError, match=r"training\.iterations"):
        config_from_dict(recorded, source="ckpt", overrides={"training.iterations": "many"})
