"""Market data: providers -> validation -> Redis cache -> aligned `MarketData` -> `FeatureSet`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from wealtharena.config import DataConfig, ServiceSettings
from wealtharena.data.cache import MarketDataCache, cache_key
from wealtharena.data.market_data import LoadReport, MarketData, TickerReport, align
from wealtharena.data.providers import Provider, RawPrices, make_provider
from wealtharena.data.validation import QualityReport, check_frames
from wealtharena.errors import CacheError

log = logging.getLogger(__name__)

__all__ = ["MarketData", "LoadReport", "TickerReport", "QualityReport", "RawPrices", "load_market_data", "fetch_raw"]


def fetch_raw(
    cfg: DataConfig,
    services: ServiceSettings | None = None,
    refresh: bool = False,
    provider: Provider | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[RawPrices, str, str | None]:
    """Raw prices through the cache. Returns (raw, cache status, cache location).

    Cache status: "hit", "miss" (loaded and stored), "refresh", "off", or "unavailable" (Redis
    could not be reached: a warning, and a direct load). The csv provider reads local files and
    is not cached.
    """
    provider = provider or make_provider(cfg)
    start, end = cfg.load_start, cfg.load_end
    provider.check_range(start, end, cfg.describe_range())
    use_cache = cfg.cache.enabled and provider.name != "csv"
    if not use_cache:
        return provider.fetch(cfg.tickers, start, end, progress), "off", None

    cache = MarketDataCache(cfg.cache, services if services is not None else ServiceSettings.from_env())
    key = cache_key(provider.name, provider.cache_key_parts(), cfg.tickers, start, end)
    try:
        if not refresh:
            try:
                cached = cache.get(key)
            except CacheError as exc:
                log.warning("%s; loading directly from the provider without the cache", exc)
                return provider.fetch(cfg.tickers, start, end, progress), "unavailable", cache.location
            if cached is not None:
                if progress:
                    progress(len(cached.frames))
                return cached, "hit", cache.location
        raw = provider.fetch(cfg.tickers, start, end, progress)
        try:
            cache.put(key, raw)
        except CacheError as exc:
            log.warning("%s; continuing without caching", exc)
            return raw, "unavailable", cache.location
        return raw, "refresh" if refresh else "miss", cache.location
    finally:
        cache.close()


def load_market_data(
    cfg: DataConfig,
    services: ServiceSettings | None = None,
    refresh: bool = False,
    provider: Provider | None = None,
    progress: Callable[[int], None] | None = None,
) -> MarketData:
    """Load, validate and align the configured market data (see `MarketData`)."""
    raw, status, location = fetch_raw(cfg, services, refresh, provider, progress)
    frames, bench, quality = check_frames(raw, cfg.quality, cfg.provider)
    market = align(frames, bench, raw.benchmark_name, cfg, quality, raw.source, cfg.provider)
    market.report.cache = status
    market.report.cache_location = location
    log.info(
        "market data: %d tickers x %d days (%s .. %s), fields %s, cache %s",
        market.n_assets,
        market.n_dates,
        market.dates[0],
        market.dates[-1],
        ",".join(market.fields),
        status,
    )
    return market
