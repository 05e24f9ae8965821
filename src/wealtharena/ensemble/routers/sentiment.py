"""`sentiment`: optimistic / pessimistic routing with an explanation for every day (after LLMoE, Liu et al.,
arXiv 2501.09636, where a language model's label of a market window picks one of two experts).

Each day the router reads the last `window_days` rows of market features (index return, realised
volatility and its percentile, drawdown, dispersion), labels the day, and gives capital to the experts
configured for the label.

- Offline default, a transparent rule: pessimistic when the index's return over the window is below
  `pessimistic_return`, or its volatility is above the `pessimistic_vol_percentile` percentile of its own
  history up to the day; optimistic otherwise. The explanation names the figures it used.
- With `ensemble.sentiment.llm`, a language model behind any OpenAI-compatible chat-completions endpoint
  (`LlmClassifier`) labels the day from the same window. A timeout, an HTTP error or an unusable reply
  falls back to the rule for that day, with the reason logged and written in the decision log; after
  three transport failures in a row the endpoint is not asked again in that run. A model whose
  training data reaches past the split's start has read about those days: the desk warns.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import numpy as np

from wealtharena.config import LlmConfig, SentimentConfig, ServiceSettings
from wealtharena.ensemble.routers.base import DayView, Decision, top_text
from wealtharena.ensemble.signals import MarketSignals

log = logging.getLogger(__name__)

LABELS = ("optimistic", "pessimistic")
MAX_FAILURES = 3  # transport failures in a row before the endpoint is given up for the run
LOGGED = 10  # fallbacks logged at WARNING; later ones at DEBUG (all are in the decision log)


@dataclass(frozen=True)
class Label:
    label: str
    explanation: str
    source: str  # "rule", "model", or "rule (fallback: <reason>)"


def window_return(sig: MarketSignals, days: int) -> float:
    return float(np.prod(1.0 + sig.index_return[-days:]) - 1.0)


def rule_label(sig: MarketSignals, cfg: SentimentConfig) -> Label:
    ret = window_return(sig, cfg.window_days)
    pct = float(sig.vol_percentile[-1])
    pessimistic = ret < cfg.pessimistic_return or pct > cfg.pessimistic_vol_percentile
    label = LABELS[int(pessimistic)]
    text = (
        f"index {cfg.window_days}-day return {ret:+.1%}, volatility {sig.vol[-1]:.1%} at the "
        f"{pct * 100:.0f}th percentile of its history: {label}"
    )
    return Label(label, text, "rule")


def window_table(sig: MarketSignals, days: int) -> str:
    """The window the model reads: one line per day, every figure known at that day's close."""
    lines = [
        "date, index return, index volatility (annualised), volatility percentile of its history, "
        "index drawdown from peak, cross-sectional dispersion of 21-day returns"
    ]
    for t in range(max(len(sig.vol) - days, 0), len(sig.vol)):
        lines.append(
            f"{sig.dates[t]}, {sig.index_return[t]:+.2%}, {sig.vol[t]:.1%}, {sig.vol_percentile[t]:.0%}, "
            f"{sig.drawdown[t]:+.1%}, {sig.dispersion[t]:.3f}"
        )
    return "\n".join(lines)


SYSTEM_PROMPT = (
    "You label the mood of the US stock market for a trading desk from a few days of market "
    "figures. Reply with JSON only, no prose around it: "
    '{"label": "optimistic" or "pessimistic", "explanation": "one sentence naming the figures used"}'
)


def parse_reply(text: str) -> tuple[str, str]:
    """(label, explanation) from a model's reply: JSON (also inside a code fence), or a reply naming exactly one
    of the two labels. Raises ValueError for anything else."""
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        label = str(data.get("label", "")).strip().lower()
        if label in LABELS:
            return label, str(data.get("explanation", "")).strip()[:300] or f"model: {label}"
        raise ValueError(f"JSON reply without a valid label: {body[:80]!r}")
    found = {w for w in LABELS if re.search(rf"\b{w}\b", body, re.IGNORECASE)}
    if len(found) == 1:
        label = found.pop()
        return label, " ".join(body.split())[:300]
    raise ValueError(f"reply names {'both labels' if found else 'no label'}: {body[:80]!r}")


class LlmClassifier:
    """Labels a window through an OpenAI-compatible endpoint (the `openai` client with `base_url`)."""

    def __init__(self, cfg: LlmConfig):
        import openai  # only with an endpoint configured: importing the client takes about 0.6 s

        self.cfg = cfg
        key = ServiceSettings.secret(cfg.api_key_env)
        self.client = openai.OpenAI(
            base_url=cfg.base_url, api_key=key or "none", timeout=cfg.timeout_seconds, max_retries=0
        )
        self.failures = 0
        self.gave_up = False
        self.fallbacks = 0

    def label(self, sig: MarketSignals, days: int) -> Label | str:
        """The model's label, or the reason it could not give one."""
        import openai

        if self.gave_up:
            return "endpoint given up after repeated failures"
        try:
            reply = self.client.chat.completions.create(
                model=self.cfg.model,
                temperature=self.cfg.temperature,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": window_table(sig, days)},
                ],
            )
            text = reply.choices[0].message.content or ""
        except openai.APITimeoutError:
            return self._transport(f"timeout after {self.cfg.timeout_seconds:g} s")
        except openai.APIStatusError as exc:
            return self._transport(f"HTTP {exc.status_code}")
        except openai.APIConnectionError as exc:
            return self._transport(f"connection failed ({type(exc.__cause__ or exc).__name__})")
        except (openai.OpenAIError, IndexError, AttributeError, TypeError, ValueError) as exc:
            return f"malformed response ({type(exc).__name__})"
        self.failures = 0
        try:
            label, explanation = parse_reply(text)
        except ValueError as exc:
            return f"unusable reply: {exc}"
        return Label(label, explanation, "model")

    def _transport(self, reason: str) -> str:
        self.failures += 1
        if self.failures >= MAX_FAILURES and not self.gave_up:
            self.gave_up = True
            log.warning(
                "sentiment model at %s failed %d times in a row (%s): the rule labels the rest of this split",
                self.cfg.base_url,
                self.failures,
                reason,
            )
        return reason


class SentimentRouter:
    name = "sentiment"

    def __init__(self, cfg: SentimentConfig, capital: dict[str, np.ndarray], experts: tuple[str, ...]):
        """`capital`: label -> capital weights [E] (resolved from the config)."""
        self.cfg = cfg
        self.columns = experts
        self.capital = capital
        self.model = LlmClassifier(cfg.llm) if cfg.llm is not None else None

    def classify(self, view: DayView) -> Label:
        rule = rule_label(view.signals, self.cfg)
        if self.model is None:
            return rule
        got = self.model.label(view.signals, self.cfg.window_days)
        if isinstance(got, Label):
            return got
        self.model.fallbacks += 1
        level = logging.WARNING if self.model.fallbacks <= LOGGED else logging.DEBUG
        log.log(
            level,
            "sentiment %s: model fallback to the rule (%s)%s",
            view.date,
            got,
            "; further fallbacks are logged at DEBUG" if self.model.fallbacks == LOGGED else "",
        )
        return Label(rule.label, rule.explanation, f"rule (fallback: {got})")

    def decide(self, view: DayView) -> Decision:
        day = self.classify(view)
        capital = self.capital[day.label]
        text = f"{day.source}: {day.explanation} -> {top_text(self.columns, capital)}"
        return Decision(capital.copy(), label=day.label, explanation=text)
