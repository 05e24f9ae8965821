"""What the desk stores: the agents' validation tracks beside a checkpoint (so a later evaluation reuses
them) and its decision logs next to the report: `routing.jsonl` (one line per day and router), `meetings.json`
and `gate.json`. Running the desk is `ensemble.desk`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from wealtharena.config import Config
from wealtharena.ensemble.fund import FundRun
from wealtharena.ensemble.routers.meeting import Meeting
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import Policy
from wealtharena.evaluation.backtest import Track, TrackKey

log = logging.getLogger(__name__)

GATE_FILE = "desk_gate.json"
TRACKS_FILE = "desk_agents-{split}.npz"  # the agents' tracks on the fit split, beside the checkpoint


def tracks_key(cfg: Config, data: EnvData, policy: Policy, split: str) -> str | None:
    """What the agents' tracks on `split` depend on: the market data, every setting of the simulation, and
    the policy's weights (None for a policy without a `fingerprint`: nothing is stored for it)."""
    fingerprint = getattr(policy, "fingerprint", None)
    if fingerprint is None:
        return None
    parts = cfg.model_dump(mode="json", include={"data", "features", "env", "risk", "profiles", "agents"})
    parts |= {"split": split, "market": data.market.fingerprint(), "policy": fingerprint()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def save_tracks(path: Path, key: str, tracks: list[Track]) -> None:
    """Tracks as arrays (no pickle) under `key`, written to a temporary file first so that an interrupted
    write never leaves a half file under `path`."""
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for i, t in enumerate(tracks):
        arrays |= {f"dates_{i}": t.dates, f"values_{i}": t.values, f"costs_{i}": t.costs}
        if t.weights is not None:
            arrays[f"weights_{i}"] = t.weights
        if t.rewards is not None:
            arrays[f"rewards_{i}"] = t.rewards
        meta.append(
            {
                "kind": t.kind,
                "name": t.name,
                "profile": t.profile,
                "members": list(t.members),
                "events": dict(t.events),
                "note": t.note,
            }
        )
    arrays["meta"] = np.array(json.dumps({"key": key, "tracks": meta}))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, allow_pickle=False, **arrays)
    tmp.replace(path)


def load_tracks(path: Path, key: str) -> list[Track] | None:
    """The tracks `save_tracks` wrote under `key`; None (and a log line saying why) when there are none, they
    were made for other data, settings or weights, or the file cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["key"] != key:
                log.info("%s was made for other data, settings or weights: running the agents again", path)
                return None
            return [
                Track(
                    key=TrackKey(m.get("kind", "agent"), m["name"]),
                    dates=z[f"dates_{i}"],
                    values=z[f"values_{i}"],
                    weights=z[f"weights_{i}"] if f"weights_{i}" in z else None,
                    costs=z[f"costs_{i}"],
                    rewards=z[f"rewards_{i}"] if f"rewards_{i}" in z else None,
                    events=Counter(m["events"]),
                    profile=m["profile"],
                    members=tuple(m["members"]),
                    note=m.get("note", ""),
                )
                for i, m in enumerate(meta["tracks"])
            ]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("cannot read %s (%s): running the agents again and replacing it", path, exc)
        return None


def write_logs(
    out_dir: Path,
    dates: np.ndarray,
    regimes: list[str],
    runs: list[FundRun],
    meetings: list[Meeting],
    gate: dict[str, Any] | None,
) -> dict[str, Path]:
    """routing.jsonl (every day, every router: date, regime, label, capital weights, explanation),
    meetings.json, gate.json; the gate's record also beside the checkpoint it was fit for (`out_dir`'s parent)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"routing": out_dir / "routing.jsonl"}
    with files["routing"].open("w") as fh:
        for run in runs:
            for s in range(len(run.labels)):
                weights = {c: round(float(w), 6) for c, w in zip(run.columns, run.capital[s]) if w > 5e-7}
                fh.write(
                    json.dumps(
                        {
                            "date": str(dates[s]),
                            "router": run.key.name,
                            "regime": regimes[s],
                            "label": run.labels[s],
                            "weights": weights,
                            "explanation": run.explanations[s],
                        }
                    )
                    + "\n"
                )
    if meetings:
        files["meetings"] = out_dir / "meetings.json"
        files["meetings"].write_text(json.dumps([m.to_dict() for m in meetings], indent=1))
    if gate is not None:
        files["gate"] = out_dir / "gate.json"
        text = json.dumps(gate, indent=1)
        files["gate"].write_text(text)
        (out_dir.parent / GATE_FILE).write_text(text)
    return files
