"""The asset-shared policy network (PPO / A2C): one scorer applied to every asset.

An EIIE-style network (Jiang, Xu & Liang 2017, "ensemble of identical independent evaluators"):
the score of asset i comes from one small MLP that sees only asset i's own columns (its TA-Lib
features over the window, its weight, unrealised P&L and the desk's weight in it) plus the columns
every asset shares (market block, the agent's portfolio and risk state, time). The cash score comes
from a second MLP on the shared columns. The env turns the N + 1 scores into portfolio weights.

Why: the plain MLP on the whole observation (785 inputs for 20 stocks) has to learn the same
relation once per asset slot and can memorise which slot did well in 1990-2014; the shared scorer
learns each relation once from all assets' data, its size does not grow with the number of assets
(14k policy parameters in config/default.yaml against 123k for a 128x128 MLP), and it is equivariant to
the order of the assets by construction (its weights apply unchanged to another universe with the
same features). The value function is a plain MLP on the whole observation (it is not used to act).

The action distribution is a diagonal Gaussian with a learnt, state-independent log-std (one per
score, starting at `training.log_std_init`, 0 when null). The last layer of the scorer and of the
cash head starts at exactly 0: every untrained policy, whatever the seed, holds the same book
(equal scores: 1/(N+1) of the value in each asset and in cash, before the risk limits), so
iteration 0 of every learning curve is that equal-weight baseline and learning is measured against
it. Gradients still reach every layer (the last layer's gradient does not depend on its weights).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn


def asset_layout(names: Sequence[str], tickers: Sequence[str], window: int,
                 asset_features: Sequence[str]) -> dict[str, list]:
    """Column indices of the observation `names`: `asset` [N][P] (each asset's own columns, in the
    same order for every asset) and `shared` [G] (all other columns)."""
    pos = {n: i for i, n in enumerate(names)}
    own = []
    for t in tickers:
        cols = [f"{f}.{t}.t-{lag}" for lag in range(window) for f in asset_features]
        cols += [f"{block}.{t}" for block in ("weight", "upnl", "desk") if f"{block}.{t}" in pos]
        missing = [c for c in cols if c not in pos]
        if missing:
            raise ValueError(f"observation has no column {missing[0]!r}")
        own.append([pos[c] for c in cols])
    taken = {i for cols in own for i in cols}
    return {"asset": own, "shared": [i for i in range(len(names)) if i not in taken]}


def _mlp(sizes: Sequence[int], out_gain: float) -> nn.Sequential:
    """tanh MLP, orthogonal init; the last layer with `out_gain` (0: it starts at exactly 0)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        lin = nn.Linear(a, b)
        nn.init.orthogonal_(lin.weight, gain=float(np.sqrt(2.0)))
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
    last = nn.Linear(sizes[-2], sizes[-1])
    if out_gain > 0:
        nn.init.orthogonal_(last.weight, gain=out_gain)
    else:
        nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class AssetSharedModule(TorchRLModule, ValueFunctionAPI):
    """model_config: `asset` [N][P] and `shared` [G] column indices (`asset_layout`), `hidden`
    (scorer and cash head), `vf_hidden` (value MLP), `log_std_init`."""

    def setup(self) -> None:
        mc: dict[str, Any] = self.model_config
        asset = torch.as_tensor(mc["asset"], dtype=torch.long)
        shared = torch.as_tensor(mc["shared"], dtype=torch.long)
        self.register_buffer("asset_idx", asset, persistent=False)
        self.register_buffer("shared_idx", shared, persistent=False)
        n, p = asset.shape
        g = len(shared)
        hidden = list(mc.get("hidden") or [64, 64])
        dim = int(np.prod(self.observation_space.shape))
        act = int(np.prod(self.action_space.shape))
        if act != n + 1:
            raise ValueError(f"asset-shared network: action has {act} scores, layout has {n} assets + cash")
        self.scorer = _mlp([p + g, *hidden, 1], out_gain=0.0)
        self.cash = _mlp([g, *hidden, 1], out_gain=0.0)
        self.vf = _mlp([dim, *list(mc.get("vf_hidden") or [256, 256]), 1], out_gain=1.0)
        init = mc.get("log_std_init")
        self.log_std = nn.Parameter(torch.full((act,), 0.0 if init is None else float(init)))
        self.action_dist_cls = TorchDiagGaussian

    def _scores(self, obs: torch.Tensor) -> torch.Tensor:
        shared = obs[:, self.shared_idx]                                   # [B, G]
        own = obs[:, self.asset_idx]                                       # [B, N, P]
        ctx = shared.unsqueeze(1).expand(-1, own.shape[1], -1)
        assets = self.scorer(torch.cat([own, ctx], dim=-1)).squeeze(-1)   # [B, N]
        return torch.cat([assets, self.cash(shared)], dim=-1)             # [B, N + 1]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mean = self._scores(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.vf(batch[Columns.OBS]).squeeze(-1)
