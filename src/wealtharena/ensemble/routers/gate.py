"""`gate`: a learnt softmax gate from market-regime features to capital weights, fit on validation only.

    capital_t = softmax(b + W x_t),   x_t = (features_t - mean) / std   (mean, std of the fitting rows)

Features at the close of t: the index's realised volatility, its trend, its drawdown, and the
assets' cross-sectional dispersion (`ensemble.signals`). The fit maximises, over the steps of the
validation split,

    mean_t log(1 + capital_t . r_t)  -  cost x mean_t |(capital_t - capital_{t-1}) @ books_t|_1
                                     -  l2 x 1e-4 x (|W|^2 + |b|^2)

with r_t the sleeves' realised net returns and books_t their target books: the fund's log-wealth with
its re-mixing trades charged at the config's cost per unit traded (commission, fixed slippage and the
volatility part at the median volatility), shrunk towards equal capital. The real fund then runs
through the risk gate with its real costs; the fit is only the objective. L-BFGS (torch, float64)
from b = W = 0; the result is frozen and recorded (`GateFit.to_dict`) in the checkpoint folder and
the report. On the split it was fit on, the gate's row is marked in-sample. The objective's gradient
is exact (written out below; a test checks it against finite differences) and SciPy's L-BFGS-B
maximises it from b = W = 0: the same data give the same gate, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize

from wealtharena.config import Config, GateConfig
from wealtharena.ensemble.experts import ExpertSet
from wealtharena.ensemble.routers.base import DayView, Decision, top_text
from wealtharena.ensemble.signals import MarketSignals
from wealtharena.envs.data import EnvData

FEATURES = ("vol", "trend", "drawdown", "dispersion")


def gate_features(signals: MarketSignals, rows: np.ndarray) -> np.ndarray:
    """[len(rows), 4] raw features at each row's close."""
    return np.stack([getattr(signals, f)[rows] for f in FEATURES], axis=1)


@dataclass(frozen=True)
class GateFit:
    """A frozen gate and what it was fit on."""

    fit_split: str
    start: str
    end: str
    steps: int
    experts: tuple[str, ...]
    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bias: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]  # [E][F]
    l2: float
    cost_per_unit: float
    objective: float
    mean_log_return: float
    iterations: int

    def capital(self, x_raw: np.ndarray) -> np.ndarray:
        z = (x_raw - np.asarray(self.mean)) / np.asarray(self.std)
        logits = np.asarray(self.bias) + np.asarray(self.weights) @ z
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def to_dict(self) -> dict:
        return asdict(self)


def cost_per_unit(cfg: Config, data: EnvData, rows: np.ndarray) -> float:
    """Cost of trading one unit of portfolio value: commission + fixed slippage + the volatility part at the
    median daily volatility of the fitting rows."""
    ex = cfg.env.execution
    vol = float(np.median(data.market_risk.vol[rows]))
    return (ex.commission_bps + ex.slippage_bps) / 1e4 + ex.slippage_vol_coef * vol


SMOOTH = 1e-12  # |x| ~ sqrt(x^2 + SMOOTH): a differentiable turnover


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def gate_objective(
    theta: np.ndarray, z: np.ndarray, r: np.ndarray, books: np.ndarray, cost: float, penalty: float
) -> tuple[float, np.ndarray, float]:
    """(objective, its gradient in theta, mean daily log return) for theta = [b (E), W (E x F)] flattened."""
    steps, e = r.shape
    f = z.shape[1]
    b, w = theta[:e], theta[e:].reshape(e, f)
    capital = _softmax(b + z @ w.T)  # [S, E]
    growth = 1.0 + (capital * r).sum(axis=1)
    log_growth = float(np.log(growth).mean())
    change = np.diff(capital, axis=0, prepend=capital[:1])  # no cost on the first day
    traded = np.einsum("se,sen->sn", change, books)  # [S, N] the fund's re-mixing trades
    smooth = np.sqrt(traded**2 + SMOOTH)
    value = log_growth - cost * float(smooth.sum(axis=1).mean()) - penalty * float(theta @ theta)
    # gradient: d/d capital, then through the softmax
    d_capital = r / growth[:, None] / steps
    d_change = -cost * np.einsum("sn,sen->se", traded / smooth, books) / steps
    d_change[0] = 0.0
    d_capital += d_change
    d_capital[:-1] -= d_change[1:]
    d_logits = capital * (d_capital - (capital * d_capital).sum(axis=1, keepdims=True))
    grad = np.concatenate([d_logits.sum(axis=0), (d_logits.T @ z).ravel()]) - 2.0 * penalty * theta
    return value, grad, log_growth


def fit_gate(cfg: GateConfig, experts: ExpertSet, signals: MarketSignals, cost: float, start: str, end: str) -> GateFit:
    """Fit the gate on `experts`' sleeves (one split: validation) and the signals at their rows."""
    rows = experts.rows[:-1]
    x = gate_features(signals, rows)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (x - mean) / std
    e, f = experts.n, len(FEATURES)
    penalty = cfg.l2 * 1e-4

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad, _ = gate_objective(theta, z, experts.returns, experts.books, cost, penalty)
        return -value, -grad

    result = minimize(
        negative,
        np.zeros(e * (1 + f)),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": cfg.max_iter, "gtol": 1e-12, "ftol": 1e-15},
    )
    value, _, log_growth = gate_objective(result.x, z, experts.returns, experts.books, cost, penalty)
    bias, weights = result.x[:e], result.x[e:].reshape(e, f)
    return GateFit(
        fit_split=experts.split,
        start=start,
        end=end,
        steps=experts.steps,
        experts=experts.names,
        features=FEATURES,
        mean=tuple(map(float, mean)),
        std=tuple(map(float, std)),
        bias=tuple(map(float, bias)),
        weights=tuple(tuple(map(float, row)) for row in weights),
        l2=cfg.l2,
        cost_per_unit=cost,
        objective=float(value),
        mean_log_return=log_growth,
        iterations=int(result.nit),
    )


class LearntGate:
    name = "gate"

    def __init__(self, fit: GateFit, experts: tuple[str, ...]):
        if tuple(fit.experts) != tuple(experts):
            raise ValueError(f"the gate was fit on experts {list(fit.experts)}, this desk has {list(experts)}")
        self.fit = fit
        self.columns = experts

    def decide(self, view: DayView) -> Decision:
        sig = view.signals
        t = len(sig.vol) - 1
        x = np.array([getattr(sig, f)[t] for f in FEATURES])
        capital = self.fit.capital(x)
        z = (x - np.asarray(self.fit.mean)) / np.asarray(self.fit.std)
        parts = ", ".join(f"{name} {value:+.1%} (z {score:+.1f})" for name, value, score in zip(FEATURES, x, z))
        text = (
            f"gate fit on {self.fit.fit_split} {self.fit.start} .. {self.fit.end}: {parts} -> "
            f"{top_text(self.columns, capital)}"
        )
        return Decision(capital, label=sig.regime_name(t), explanation=text)
