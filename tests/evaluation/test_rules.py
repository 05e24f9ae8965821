"""Hand-written score rules: scores from the observation's own feature columns, run through the same
episodes as the learning table, beside the equal-weight (zero-score) book."""

import numpy as np
import pytest
import yaml

from wealtharena.envs.policy import EqualWeightPolicy
from wealtharena.errors import ConfigError
from wealtharena.evaluation import rules
from wealtharena.evaluation.episodes import run_episodes

LENGTH = 20


@pytest.fixture(scope="module")
def cfg(sample_config):
    return sample_config.model_copy(update={"env": sample_config.env.model_copy(update={"episode_length": LENGTH})})


def test_scores_are_the_named_feature_columns_times_their_coefficients(cfg, sample_data):
    data = sample_data
    names = data.observation_names(cfg.env.desk_observation)
    obs = np.random.default_rng(0).normal(size=(3, len(names))).astype(np.float32)
    act = rules.rule_policy("ret_21:0.5+vol_63:-0.25+cash:mkt_vol_21:2", data, cfg.env.desk_observation)
    scores = act(obs, ["balanced"] * 3)
    ret = [names.index(f"ret_21.{t}.t-0") for t in data.market.tickers]
    vol = [names.index(f"vol_63.{t}.t-0") for t in data.market.tickers]
    np.testing.assert_allclose(scores[:, :-1], 0.5 * obs[:, ret] - 0.25 * obs[:, vol], rtol=1e-6)
    np.testing.assert_allclose(scores[:, -1], 2 * obs[:, names.index("market.mkt_vol_21")], rtol=1e-6)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("foo:1", "no per-asset feature 'foo'; known: ret_1"),
        ("cash:foo:1", "no market feature 'foo'; known: mkt_ret_1"),
        ("ret_21", "part 'ret_21' is not FEATURE:C"),
        ("ret_21:x", "part 'ret_21:x' is not FEATURE:C"),
        ("ret_21:0.1+bank:mkt_vol_21:1", "part 'bank:mkt_vol_21:1' is not"),
    ],
)
def test_a_bad_rule_is_refused_with_what_is_known(cfg, spec, message, sample_data):
    with pytest.raises(ConfigError, match=message):
        rules.rule_policy(spec, sample_data, cfg.env.desk_observation)


def test_table_puts_each_rule_beside_equal_weight_on_the_same_episodes(cfg, sample_data):
    table = rules.rules_table(cfg, sample_data, ["ret_21:0.3"], ["train", "validation"], train_stride=250)
    assert list(table["rule"]) == ["equal weight", "equal weight", "ret_21:0.3", "ret_21:0.3"]
    zero = run_episodes(
        cfg, sample_data, EqualWeightPolicy(20), "validation", stride=cfg.training.eval_stride
    ).by_policy()
    ew = table[(table["rule"] == "equal weight") & (table["split"] == "validation")].iloc[0]
    for p, (mean, _) in zero.items():
        assert ew[p] == pytest.approx(mean, abs=1e-12)
    profiles = ["conservative", "balanced", "aggressive"]
    momentum = table[table["rule"] == "ret_21:0.3"].set_index("split")[profiles]
    assert (momentum != table[table["rule"] == "equal weight"].set_index("split")[profiles]).all().all()
    text = rules.render(table)
    assert "train split: mean episode reward per profile" in text and "ret_21:0.3" in text


def test_cli_prints_the_table_and_refuses_a_bad_rule_with_exit_code_2(cfg, cache_dir, tmp_path, capsys):
    from wealtharena.cli import run_cli

    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"data": {"cache": {"dir": str(cache_dir)}}, "env": {"episode_length": LENGTH}}))
    assert rules.main(["cash:mkt_vol_21:0.3", "--config", str(path), "--splits", "validation"]) == 0
    assert "cash:mkt_vol_21:0.3" in capsys.readouterr().out
    assert run_cli(rules.main, ["nope:1", "--config", str(path)]) == 2
    assert "no per-asset feature 'nope'" in capsys.readouterr().err
