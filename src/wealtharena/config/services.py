"""Service URLs and secrets from the environment (`REDIS_URL`, `MLFLOW_TRACKING_URI`, `WANDB_API_KEY`, an
LLM endpoint's key): the only place that reads environment variables. They are never logged or written into
a config dump; `redact_url` hides a URL's password in logs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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

    @staticmethod
    def secret(name: str) -> str | None:
        """A secret from the environment variable `name` (e.g. an LLM endpoint's key), or None."""
        return os.environ.get(name) or None


def redact_url(url: str | None) -> str | None:
    """`redis://user:secret@host:6379/0` -> `redis://user:***@host:6379/0`, for logs."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"
