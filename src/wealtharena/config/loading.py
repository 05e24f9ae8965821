"""`load_config()`: YAML (a path, or a name under `config/`) plus dotted overrides into a validated `Config`;
every problem a `ConfigError` naming the file, the key path, what is allowed and, for a misspelled key, a
suggestion. The only module that reads YAML."""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from wealtharena.config.schema import Config
from wealtharena.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CONFIG = "default.yaml"


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


def config_from_dict(raw: dict[str, Any], source: str = "<dict>", overrides: dict[str, Any] | None = None) -> Config:
    """Validate a plain dict (an RLlib `env_config`, a test's inline config, a checkpoint's record) into a
    `Config`, with dotted `overrides` merged into a copy first."""
    if overrides:
        raw = copy.deepcopy(raw)
        for key, value in overrides.items():
            _set_dotted(raw, key, value, Path(source))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def coerce_config(
    value: Config | dict[str, Any] | str | os.PathLike[str] | None, overrides: dict[str, Any] | None = None
) -> Config:
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


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at the parent of `loc` in the Config schema (a map's keys are skipped)."""
    model: Any = Config
    skip = False
    for part in loc[:-1]:
        if skip or isinstance(part, int) or model is None:
            skip = False
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return []
        skip = get_origin(info.annotation) is dict
        model = _model_in(info.annotation)
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
