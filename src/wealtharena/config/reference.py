"""docs/configuration.md: every key of the schema with its default and description
(`python -m wealtharena.config > docs/configuration.md`; a test checks it is current)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel

from wealtharena.config.loading import _model_in
from wealtharena.config.schema import Config


def _default_text(info: Any) -> str:
    if info.is_required():
        return "(required)"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, Path):
        value = str(value)
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def reference(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) of every key of the schema, sections first-level down."""
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        rows.append((key, _default_text(info), " ".join((info.description or "").split())))
        sub = _model_in(info.annotation)
        if sub is not None:
            origin = get_origin(info.annotation)
            inner = f"{key}.<name>." if origin is dict else f"{key}[]." if origin is list else f"{key}."
            rows += reference(sub, inner)
    return rows


def markdown_reference() -> str:
    """docs/configuration.md: every key with its default and description."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `src/wealtharena/config/schema.py` by `python -m wealtharena.config > docs/configuration.md`",
        "(a test checks it is current). Every key is optional unless marked required; `Config()` is the",
        "default run, and `config/default.yaml` shows the keys a reader of the default run should see.",
        "Profiles (`profiles.<name>`) and per-policy settings (`training.policies.<name>`) are maps of the",
        "sections listed under them.",
        "",
        "| key | default | what it does |",
        "|---|---|---|",
    ]
    for key, default, text in reference():
        lines.append(f"| `{key}` | `{default}` | {text.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
