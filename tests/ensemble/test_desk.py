"""The desk on the real sample set: causality, what is fit on what, one expert reproduced, the fund's limits,
the decision log, and bad input. The agents are hand-written momentum rules (the desk does not care
whether a policy was trained: any `Policy` will do), so the experts differ and nothing needs Ray."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import ProfileRules, violations
from wealtharena.config import coerce_config
from wealtharena.ensemble.desk import CHOSEN, CHOSEN_ALONE, HINDSIGHT, check_inputs, run_desk
from wealtharena.ensemble.experts import ExpertSet
from wealtharena.ensemble.fund import run_funds
from wealtharena.ensemble.report import desk_summary
from wealtharena.ensemble.routers.base import Decision
from wealtharena.ensemble.routers.baselines import FixedCapital
from wealtharena.ensemble.signals import build_signals
from wealtharena.envs.data import build_env_data
from wealtharena.errors import ConfigError
from wealtharena.evaluation.backtest import TrackKey, backtest


@pytest.fixture(scope="module")
def cfg(sample_config):
    return coerce_config(sample_config, {"evaluation.tearsheets": False})


@pytest.fixture(scope="module")
def policy(sample_data, cfg):
    return ProfileRules(sample_data, cfg.env.desk_observation)


@pytest.fixture(scope="module")
def test_desk(cfg, sample_data, policy, tmp_path_factory):
    bt = backtest(cfg, sample_data, policy, "test")
    out = tmp_path_factory.mktemp("ckpt") / "eval-test"
    return bt, run_desk(cfg, sample_data, policy, "test", bt, out), out


def test_every_router_and_baseline_is_a_row_with_the_log_behind_it(test_desk, cfg):
    bt, desk, out = test_desk
    keys = {t.key for t in desk.tracks}
    assert {TrackKey("router", r) for r in cfg.ensemble.routers} <= keys
    baselines = {"equal_capital", "picker", "chosen", "chosen_alone", "hindsight", "equal_weight_fund"}
    assert {k.name for k in keys if k.kind == "desk_baseline"} == baselines
    assert TrackKey("router", "hedge").label == "desk: hedge (Fixed Share)"  # labels come from keys
    hindsight = next(t for t in desk.tracks if t.key == HINDSIGHT)
    assert hindsight.label == "desk baseline: best agent in hindsight (unattainable)"
    # every desk row counts its fund's risk events, as the agents' rows do
    assert all(sum(t.events.values()) > 0 for t in desk.tracks if t.kind == "router")
    assert {r.key.name: r.events for r in desk.runs} == desk.to_dict()["events"]
    # the chosen agent trading alone is its own row of the backtest, to the bit
    assert next(t for t in desk.tracks if t.key == CHOSEN).note == ""
    alone = next(t for t in desk.tracks if t.key == CHOSEN_ALONE)
    own = next(t for t in bt.agents() if t.profile == desk.chosen_agent or t.name == desk.chosen_agent)
    np.testing.assert_array_equal(alone.values, own.values)
    assert not any("in-sample" in t.label for t in desk.tracks)  # the gate was fit on validation
    # identical agents count once: the two conservative and the two aggressive agents are one expert each
    assert desk.experts[:3] == ("conservative", "balanced", "aggressive")
    lines = [json.loads(x) for x in (out / "routing.jsonl").read_text().splitlines()]
    steps = len(desk.dates) - 1
    assert len(lines) == steps * len(desk.runs)
    first = next(x for x in lines if x["router"] == "volatility")
    assert set(first) == {"date", "router", "regime", "label", "weights", "explanation"}
    assert (
        first["label"] in ("calm_up", "calm_down", "volatile_up", "volatile_down")
        and "index volatility" in first["explanation"]
    )
    assert abs(sum(first["weights"].values()) - 1.0) < 1e-5
    gate = json.loads((out / "gate.json").read_text())
    assert (
        gate["fit_split"] == "validation" and gate["start"].startswith("2015") and gate["experts"] == list(desk.experts)
    )
    assert json.loads((out.parent / "desk_gate.json").read_text()) == gate  # also beside the checkpoint
    meetings = json.loads((out / "meetings.json").read_text())
    assert meetings[0]["date"] == str(desk.dates[0]) and {
        "proposals",
        "confidence",
        "agreement",
        "decision",
        "capital_before",
        "capital_after",
        "desk_return",
        "index_return",
    } <= set(meetings[0])
    assert len(meetings) == -(-steps // cfg.ensemble.meeting.round_days)
    assert "expert meetings:" in desk_summary(desk)


def test_routing_decisions_up_to_a_day_ignore_every_later_price(
    cfg, sample_data, sample_market, policy, test_desk, tmp_path
):
    """Causality: prices after day d are changed (within the test split); every router's capital weights and
    the fund's books up to d are bit-identical, and the gate, fit on validation, is the same gate."""
    _, desk, _ = test_desk
    lo = sample_data.usable_rows("test")[0]
    d = lo + 300
    rng = np.random.default_rng(7)
    values = sample_market.values.copy()
    values[d + 1 :] *= np.exp(np.cumsum(rng.normal(0, 0.03, values[d + 1 :].shape), axis=0))
    bench = sample_market.benchmark.copy()
    bench[d + 1 :] *= np.exp(np.cumsum(rng.normal(0, 0.03, len(bench) - d - 1)))
    market = dataclasses.replace(sample_market, values=values, benchmark=bench)
    data = build_env_data(cfg, market)
    other_policy = ProfileRules(data, cfg.env.desk_observation)
    bt = backtest(cfg, data, other_policy, "test")
    other = run_desk(cfg, data, other_policy, "test", bt, tmp_path / "eval-test")
    assert other.gate == desk.gate  # fit on validation only
    s = d - lo
    for a, b in zip(desk.runs, other.runs):
        assert a.key == b.key
        if a.key == HINDSIGHT:  # chosen with the split's own returns: it may follow later prices by design
            continue
        np.testing.assert_array_equal(a.capital[: s + 1], b.capital[: s + 1], err_msg=a.name)
        np.testing.assert_array_equal(a.weights[: s + 1], b.weights[: s + 1])
        np.testing.assert_array_equal(a.values[: s + 1], b.values[: s + 1])
        assert a.explanations[: s + 1] == b.explanations[: s + 1]
        assert not np.array_equal(a.values, b.values)  # later days did change


def test_one_expert_with_all_the_capital_is_that_expert_and_all_cash_is_flat(cfg, sample_data, test_desk):
    """Through the fund profile's gate (the expert's own profile here) and costs on its own trades, a fund
    that gives one expert all its capital reproduces that expert's track, to rounding."""
    bt, desk, _ = test_desk
    agent = next(t for t in bt.agents() if t.profile == "aggressive")
    fund_cfg = coerce_config(cfg, {"ensemble.fund_profile": "aggressive"})
    experts = _experts_of(fund_cfg, sample_data, bt)
    e = experts.names.index("aggressive")
    routers = [
        FixedCapital("one", np.eye(experts.n)[e], experts.names, ""),
        FixedCapital("cash", np.eye(experts.n)[experts.names.index("cash")], experts.names, ""),
    ]
    one, cash = run_funds(
        fund_cfg,
        sample_data,
        experts,
        build_signals(sample_data.market, cfg.ensemble.volatility),
        routers,
        "aggressive",
    )
    np.testing.assert_allclose(one.values, agent.values, rtol=1e-9)
    np.testing.assert_allclose(one.costs, agent.costs, rtol=1e-7, atol=1e-6)
    assert (cash.values == cfg.env.initial_cash).all() and (cash.costs == 0).all()


def _experts_of(cfg, data, bt):
    from wealtharena.ensemble.experts import build_experts

    return build_experts(cfg, data, bt.split, bt.agents())


class RandomCapital:
    """A router that mixes the experts at random every day (concentrated or spread)."""

    name = "random"

    def __init__(self, n: int, seed: int, concentration: float):
        self.columns = tuple(f"e{i}" for i in range(n))
        self.rng = np.random.default_rng(seed)
        self.alpha = np.full(n, concentration)

    def decide(self, view):
        return Decision(self.rng.dirichlet(self.alpha))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31 - 1),
    concentration=st.floats(0.05, 5.0),
    start=st.integers(0, 700),
    profile=st.sampled_from(["conservative", "balanced", "aggressive"]),
)
def test_the_fund_obeys_every_hard_limit_of_its_profile_every_day(
    cfg, sample_data, seed, concentration, start, profile
):
    """Whatever the experts propose and the router mixes (here: random books, random capital), the fund's
    book passes its profile's gate: position cap, leverage, correlation, volatility, VaR, cool-downs,
    reduce-only and halt."""
    rng = np.random.default_rng(seed)
    lo = sample_data.usable_rows("test")[0] + start
    steps, e, n = 120, 4, sample_data.market.n_assets
    books = rng.dirichlet(np.full(n + 1, 0.3), size=(steps, e))[:, :, :n] * rng.uniform(0.3, 1.0, (steps, e, 1))
    experts = ExpertSet(
        names=tuple(f"e{i}" for i in range(e)),
        kinds=("classic",) * e,
        profiles=(None,) * e,
        members=((),) * e,
        books=books,
        returns=np.zeros((steps, e)),
        rows=np.arange(lo, lo + steps + 1),
        split="test",
    )
    bad = []

    def audit(t, pm, allowed, current):
        bad.append(violations(pm.risk, pm.market_risk, allowed, t, current, None))

    run_funds(
        cfg,
        sample_data,
        experts,
        build_signals(sample_data.market, cfg.ensemble.volatility),
        [RandomCapital(e, seed, concentration)],
        profile,
        on_step=audit,
    )
    assert len(bad) == steps and sum(bad) == 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ensemble.ranking.top_k": 21}, r"ensemble.ranking.top_k is 21 but the universe has 20 stocks"),
        (
            {"data.splits.validation": {"start": "2015-01-01", "end": "2015-02-15"}},
            r"ensemble.gate is fit on the validation split, which has \d+ usable days",
        ),
    ],
)
def test_desk_settings_that_need_the_data_are_refused_before_any_run(cfg, sample_data, overrides, message):
    from wealtharena.data.market_data import split_rows

    bad = coerce_config(cfg, overrides)
    market = dataclasses.replace(sample_data.market, splits=split_rows(sample_data.market.dates, bad.data.splits))
    data = sample_data if "data.splits.validation" not in overrides else build_env_data(bad, market)
    with pytest.raises(ConfigError, match=message):
        check_inputs(bad, data)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ensemble.routers": ["hedge", "bandit"]}, r"ensemble.routers.1: Input should be 'hedge'"),
        ({"ensemble.experts": ["agents", "momentum_fund"]}, r"unknown experts \['momentum_fund'\]"),
        ({"ensemble.volatility.table": {"calm_up": {"cash": 1.0}}}, r"missing \['calm_down', 'volatile_up'"),
        (
            {"ensemble.volatility.table.calm_up": {"aggressive": 0.5, "cash": 0.4}},
            r"calm_up: weights sum to 0.9, not 1",
        ),
        (
            {"ensemble.volatility.table.calm_up": {"aggresive": 1.0}},
            r"ensemble.volatility.table.calm_up: \['aggresive'\] are not experts of this desk",
        ),
        (
            {"ensemble.sentiment.optimistic": {"hrp": 1.0}, "ensemble.experts": ["agents", "cash"]},
            r"ensemble.sentiment.optimistic: \['hrp'\] are not experts",
        ),
        ({"ensemble.hedge.learning_rate": -1.0}, r"ensemble.hedge.learning_rate.*greater than 0"),
        ({"ensemble.hedge.share": 1.5}, r"ensemble.hedge.share.*less than 1"),
        ({"ensemble.meeting.agreement_threshold": -0.1}, r"agreement_threshold.*greater than or equal to 0"),
        ({"ensemble.fund_profile": "reckless"}, r"ensemble.fund_profile: 'reckless' is not under 'profiles'"),
    ],
)
def test_bad_desk_config_is_a_typed_error_naming_the_key(cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        coerce_config(cfg, overrides)


def test_cli_refuses_a_bad_desk_setting_with_exit_code_2_and_writes_nothing(cfg, tmp_path):
    import subprocess
    import sys

    import yaml

    from wealtharena.config import PROJECT_ROOT

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"ensemble": {"volatility": {"table": {"calm_up": {"cash": 1.0}}}}}))
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), "--config", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "ensemble.volatility.table" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_report_sections_show_the_desk(test_desk, tmp_path):
    from wealtharena.ensemble.report import desk_sections
    from wealtharena.evaluation.report import write_results

    bt, desk, _ = test_desk
    bt = dataclasses.replace(bt, tracks=bt.tracks + desk.tracks)
    paths = write_results(bt, tmp_path, tearsheets=False, sections=desk_sections(desk, bt, tmp_path))
    html = paths["report"].read_text()
    assert "The desk (mixture of experts)" in html and "desk_capital.png" in html and "Expert meetings" in html
    assert "routing.jsonl" in html and "desk: learnt gate" in html
    for name in ("desk_capital", "desk_paths"):
        assert paths[name].stat().st_size > 10_000, name
    assert Path(paths["routing"]).is_file()


def test_classic_sleeves_are_opt_in_and_run_under_the_funds_limits(cfg, sample_data, test_desk):
    """With the classic portfolios as experts they are sleeves fit before the split and held under the fund
    profile's limits (the report's classic rows have none)."""
    from wealtharena.ensemble.experts import build_experts

    bt, _, _ = test_desk
    with_classic = coerce_config(
        cfg, {"ensemble.experts": ["agents", "cash", "equal_weight", "hrp"], "ensemble.fund_profile": "conservative"}
    )
    experts = build_experts(with_classic, sample_data, "test", bt.agents())
    assert experts.names[-2:] == ("equal_weight", "hrp") and experts.kinds[-1] == "classic"
    cap = with_classic.profile_risk("conservative").max_position
    assert experts.books[:, -2:].max() <= cap + 1e-12 and experts.books[:, -1].sum(axis=1).max() > 0.3
    report_hrp = bt.track(TrackKey("baseline", "hrp"))
    assert report_hrp is not None and report_hrp.label == "hierarchical risk parity"
    assert report_hrp.weights.max() > cap  # unconstrained in the report's own row


class Weighted(ProfileRules):
    """ProfileRules with a `fingerprint`, as a trained policy has one of its weights; counts its calls."""

    def __init__(self, data, desk: bool, weights: str):
        super().__init__(data, desk)
        self.weights, self.calls = weights, 0

    def fingerprint(self) -> str:
        return self.weights

    def __call__(self, obs, profiles):
        self.calls += 1
        return super().__call__(obs, profiles)


def test_the_fit_splits_agent_tracks_are_kept_with_the_checkpoint_and_reused_only_when_they_match(
    cfg, sample_data, test_desk, tmp_path, caplog
):
    bt, reference, _ = test_desk
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    stored = ckpt / "desk_agents-validation.npz"

    def run(weights: str):
        policy = Weighted(sample_data, cfg.env.desk_observation, weights)
        desk = run_desk(cfg, sample_data, policy, "test", bt, ckpt / "eval-test", ckpt)
        for mine, theirs in zip(desk.tracks, reference.tracks, strict=True):  # the same desk as computed afresh
            assert mine.key == theirs.key and np.array_equal(mine.values, theirs.values), mine.label
        return policy.calls

    assert run("w1") > 0 and stored.is_file()  # run on validation, then stored
    assert run("w1") == 0  # reused: the agents did not run again
    assert run("w2") > 0  # other weights: run again, and stored for them
    assert run("w2") == 0 and run("w1") > 0
    stored.write_bytes(b"not an npz file")
    with caplog.at_level("WARNING"):
        assert run("w1") > 0
    assert "cannot read" in caplog.text and run("w1") == 0  # replaced by a good file
    # a desk run on the fit split itself stores its own agents' tracks for later runs on other splits
    validation = backtest(cfg, sample_data, Weighted(sample_data, cfg.env.desk_observation, "w3"), "validation")
    run_desk(
        cfg,
        sample_data,
        Weighted(sample_data, cfg.env.desk_observation, "w3"),
        "validation",
        validation,
        ckpt / "eval-validation",
        ckpt,
    )
    assert run("w3") == 0


def test_a_fund_profile_below_full_leverage_runs_with_its_books_scaled_by_its_gate(
    cfg, sample_data, test_desk, tmp_path
):
    """`max_leverage: 0.9` on the fund's profile: the mixed books that sum to 1 are scaled to 0.9 by the gate's
    leverage step (a counted risk event), and the desk runs to the end."""
    bt, _, _ = test_desk
    lower = coerce_config(cfg, {"profiles.balanced.risk": {"max_leverage": 0.9}})
    desk = run_desk(lower, sample_data, ProfileRules(sample_data, cfg.env.desk_observation), "test", bt, tmp_path)
    for run in desk.runs:
        assert run.weights.sum(axis=1).max() <= 0.9 + 1e-9, run.key
    assert any(run.events.get("leverage", 0) > 0 for run in desk.runs)
    fund_ew = next(t for t in desk.tracks if t.key.name == "equal_weight_fund")
    assert fund_ew.weights.sum(axis=1).max() <= 0.9 + 1e-9 and fund_ew.events["leverage"] > 0
