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

Input-driven baseline (Mao et al. 2019, "Variance Reduction for Reinforcement Learning in
Input-Driven Environments"), opt-in with `training.critic_horizons`. Part of every advantage is
the market's move, which no action causes and no state predicts. The market path is an exogenous
input (the agents' orders do not move prices here), so a baseline may depend on it without
biasing the policy gradient: E[grad log pi(a|s) b(s, z)] = 0 whenever z is independent of the
action a. The value function then also sees z = the assets' realised log returns over the next h
days (`CriticInputs` adds them to the train batch from the training env's infos) and what the
agent's current book would earn on them. Only the learner sees z: the policy's inputs are the
observation alone, and evaluation and inference envs never produce z. Measured on the default
config: value loss about 20% lower, validation learning no better (docs/studies/learning.md), since
most of the advantage's noise is the sampled action's own, which no baseline removes.

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
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn


def asset_layout(
    names: Sequence[str], tickers: Sequence[str], window: int, asset_features: Sequence[str]
) -> dict[str, list]:
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
    weights = [pos.get(f"weight.{t}", -1) for t in tickers]
    return {"asset": own, "shared": [i for i in range(len(names)) if i not in taken], "weight": weights}


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


CRITIC = "critic_inputs"  # train-batch column: the value function's market inputs


class CriticInputs(ConnectorV2):
    """Learner connector: the `critic` array of each observation's info (the training env's forward
    market returns, `EnvOptions.critic_horizons`) as the train-batch column `critic_inputs`, aligned
    with the observations (including the bootstrap one that PPO's learner appends)."""

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any) -> Any:
        for sa_episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            n = len(sa_episode)
            infos = sa_episode.get_infos(slice(0, n))
            try:
                items = np.stack([info["critic"] for info in infos])
            except KeyError:
                raise RuntimeError(
                    "training.critic_horizons is set but an env info has no 'critic' entry: the "
                    "training env must be built with env_config critic_horizons (see EnvOptions)"
                ) from None
            self.add_n_batch_items(batch, CRITIC, items, n, sa_episode)
        return batch


class AssetSharedModule(TorchRLModule, ValueFunctionAPI):
    """model_config: `asset` [N][P], `shared` [G] and `weight` [N] column indices (`asset_layout`),
    `hidden` (scorer and cash head), `vf_hidden` (value network), `value_network` (`dense`: an MLP on the
    whole observation; `asset_shared`: an MLP on each asset's columns and the shared ones, like the scorer,
    averaged over the assets), `log_std_init`, `critic_horizons` (the dense value function's forward-return
    inputs; empty or absent: the observation only)."""

    def setup(self) -> None:
        mc: dict[str, Any] = self.model_config
        asset = torch.as_tensor(mc["asset"], dtype=torch.long)
        shared = torch.as_tensor(mc["shared"], dtype=torch.long)
        self.register_buffer("asset_idx", asset.reshape(-1), persistent=False)
        self.register_buffer("shared_idx", shared, persistent=False)
        n, p = asset.shape
        self.n_assets, self.asset_width = n, p
        g = len(shared)
        hidden = list(mc["hidden"])  # []: a linear scorer
        vf_hidden = list(mc["vf_hidden"])
        dim = int(np.prod(self.observation_space.shape))
        act = int(np.prod(self.action_space.shape))
        if act != n + 1:
            raise ValueError(f"asset-shared network: action has {act} scores, layout has {n} assets + cash")
        self.scorer = _mlp([p + g, *hidden, 1], out_gain=0.0)
        self.cash = _mlp([g, *hidden, 1], out_gain=0.0)
        horizons = [int(h) for h in mc.get("critic_horizons") or []]
        self.n_horizons = len(horizons)
        self.value_network = mc.get("value_network") or "dense"
        if self.value_network == "asset_shared":
            if horizons:
                raise ValueError("critic_horizons feed the dense value network only (value_network: dense)")
            self.vf = _mlp([p + g, *vf_hidden, 1], out_gain=1.0)
        else:
            extra = 0
            if horizons:
                weight = torch.as_tensor(mc["weight"], dtype=torch.long)
                if (weight < 0).any():
                    raise ValueError("critic_horizons needs the weight columns in the observation")
                self.register_buffer("weight_idx", weight, persistent=False)
                # a typical h-day move (2% a day) maps to about 1
                self.register_buffer(
                    "fwd_scale",
                    1.0 / (0.02 * torch.sqrt(torch.tensor(horizons, dtype=torch.float32))),
                    persistent=False,
                )
                extra = len(horizons) * (n + 2)  # every asset, the book's, the average
            self.vf = _mlp([dim + extra, *vf_hidden, 1], out_gain=1.0)
        init = mc.get("log_std_init")
        self.log_std = nn.Parameter(torch.full((act,), 0.0 if init is None else float(init)))
        self.action_dist_cls = TorchDiagGaussian

    def _per_asset(self, mlp: nn.Sequential, own: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        """`mlp` on [own_i, shared] for every asset i: [B, N, out]. Its first layer on the concatenation is
        W_own @ own_i + W_shared @ shared + b: the shared part is computed once per row and broadcast over
        the assets instead of being copied next to each asset."""
        first: nn.Linear = mlp[0]  # type: ignore[assignment]
        p = own.shape[-1]
        ctx = torch.addmm(first.bias, shared, first.weight[:, p:].t())  # [B, H]
        h = torch.matmul(own, first.weight[:, :p].t()) + ctx.unsqueeze(1)  # [B, N, H]
        return mlp[1:](h)

    def _columns(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(each asset's own columns [B, N, P], the shared columns [B, G]); index_select along the columns is
        a few times faster than advanced indexing with a 2-d index."""
        own = obs.index_select(1, self.asset_idx).view(obs.shape[0], self.n_assets, self.asset_width)
        return own, obs.index_select(1, self.shared_idx)

    def _scores(self, obs: torch.Tensor) -> torch.Tensor:
        own, shared = self._columns(obs)
        assets = self._per_asset(self.scorer, own, shared).squeeze(-1)  # [B, N]
        return torch.cat([assets, self.cash(shared)], dim=-1)  # [B, N + 1]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mean = self._scores(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        obs = batch[Columns.OBS]
        if self.value_network == "asset_shared":
            per_asset = self._per_asset(self.vf, *self._columns(obs))  # [B, N, 1]
            return per_asset.mean(dim=(1, 2))
        if not self.n_horizons:
            return self.vf(obs).squeeze(-1)
        if CRITIC not in batch:
            raise KeyError(
                f"value function with critic_horizons: the batch has no '{CRITIC}' column "
                "(added by the CriticInputs learner connector from training infos)"
            )
        fwd = batch[CRITIC].reshape(obs.shape[0], self.n_horizons, -1) * self.fwd_scale[:, None]  # [B, H, N]
        book = (fwd * obs[:, self.weight_idx].unsqueeze(1)).sum(-1)  # [B, H]
        x = torch.cat([obs, fwd.flatten(1), book, fwd.mean(-1)], dim=-1)
        return self.vf(x).squeeze(-1)
