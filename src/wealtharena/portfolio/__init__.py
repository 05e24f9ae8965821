"""Book, execution costs, risk limits and metrics; knows nothing of envs or training."""

from wealtharena.portfolio.book import Book, Fill
from wealtharena.portfolio.execution import ExecutionModel
from wealtharena.portfolio.limits import RiskLimits
from wealtharena.portfolio.manager import PortfolioManager, StepResult
from wealtharena.portfolio.market_risk import MarketRisk
from wealtharena.portfolio.risk import REASONS, RiskManager

__all__ = [
    "Book",
    "Fill",
    "ExecutionModel",
    "MarketRisk",
    "PortfolioManager",
    "REASONS",
    "RiskLimits",
    "RiskManager",
    "StepResult",
]
