"""The yardstick for training throughput: PPO as one plain process, the way CleanRL writes it.

Same simulation (`TradingCore`, B episodes x 5 agents stepped as arrays), same networks
(`AssetSharedModule` per policy, built without Ray), same batch, epochs, minibatch size, learning
rates, clipping and GAE as the run's config, but no RLlib: observations go into preallocated
arrays, one forward pass per policy per step, GAE in numpy, plain `torch.optim.Adam`, minibatches
cut from a permutation of each policy's rows, `num_epochs` passes over each. Not the product
(no metrics, checkpoints, clusters or callbacks): `bench_train.py` measures the product against it.

    python benchmarks/bare_ppo.py [--config default] [--iterations 5] [--envs 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns

from wealtharena.config import Config, load_config
from wealtharena.envs.core import TradingCore
from wealtharena.envs.data import EnvData, load_env_data
from wealtharena.training.models import AssetSharedModule, asset_layout
from wealtharena.training.rollout import gae


class BarePPO:
    """One process, one loop: `iteration()` samples a batch and updates every policy on it."""

    def __init__(self, cfg: Config, data: EnvData, n_envs: int, threads: int, seed: int = 0):
        torch.manual_seed(seed)
        self.cfg, tr = cfg, cfg.training
        self.threads = threads
        self.core = TradingCore(cfg, [a.profile for a in cfg.agents], "train", data=data, desk=True, n_envs=n_envs)
        self.rng = np.random.default_rng(seed)
        self.obs = self.core.reset(self.rng, cfg.env.episode_length).copy()
        layout = asset_layout(
            data.observation_names(True), data.market.tickers, cfg.env.window, data.features.asset_names
        )
        k, d, a = self.core.k, self.core.dim, self.core.n + 1
        profiles = np.asarray(self.core.profiles)
        self.rows = {p: np.flatnonzero(profiles == p) for p in cfg.policy_ids}
        self.modules, self.optimisers = {}, {}
        for p in cfg.policy_ids:
            pc = tr.policy(p)
            module = AssetSharedModule(
                observation_space=spaces.Box(-10.0, 10.0, (d,), np.float32),
                action_space=spaces.Box(-1.0, 1.0, (a,), np.float32),
                model_config={
                    **layout,
                    "hidden": pc.hidden,
                    "vf_hidden": pc.vf_hidden,
                    "log_std_init": tr.log_std_of(p),
                    "value_network": tr.value_network,
                },
            )
            self.modules[p] = module
            self.optimisers[p] = torch.optim.Adam(module.parameters(), lr=pc.lr or tr.lr)
        self.steps = -(-tr.train_batch_size // n_envs)
        self.k, self.d, self.a = k, d, a

    def sample(self) -> dict[str, dict[str, np.ndarray]]:
        core, t_len, k, a = self.core, self.steps, self.k, self.a
        obs = np.empty((t_len, k, self.d), np.float32)
        act = np.empty((t_len, k, a), np.float32)
        logp = np.empty((t_len, k), np.float32)
        val = np.empty((t_len + 1, k))
        rew = np.empty((t_len, k))
        end = np.zeros((t_len, k), bool)
        torch.set_num_threads(1)
        with torch.no_grad():
            for t in range(t_len + 1):
                for p, rows in self.rows.items():
                    x = torch.from_numpy(self.obs[rows])
                    val[t, rows] = self.modules[p].compute_values({Columns.OBS: x}).numpy()
                    if t < t_len:
                        out = self.modules[p]._forward({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS].numpy()
                        mean, log_std = out[:, :a], out[:, a:]
                        noise = self.rng.standard_normal(mean.shape, dtype=np.float32)
                        act[t, rows] = mean + np.exp(log_std) * noise
                        logp[t, rows] = -0.5 * (noise**2).sum(1) - log_std.sum(1) - a * 0.5 * np.log(2 * np.pi)
                if t == t_len:
                    break
                obs[t] = self.obs
                o, r, term, trunc = core.step(act[t].astype(np.float64))
                rew[t] = r
                done = np.repeat(trunc, core.n_agents) | term
                end[t] = done
                if trunc.any():  # whole episodes end together; a terminated agent just stops earning
                    o = core.reset(self.rng, self.cfg.env.episode_length, envs=np.flatnonzero(trunc))
                self.obs = o.copy()
        nxt = np.where(end, 0.0, val[1:])
        adv, target = gae(rew, val[:-1], nxt, end, self.cfg.training.gamma, self.cfg.training.gae_lambda)
        out = {}
        for p, rows in self.rows.items():
            sel = np.s_[:, rows]
            adv_p = adv[sel].reshape(-1)
            out[p] = {
                "obs": obs[sel].reshape(-1, self.d),
                "act": act[sel].reshape(-1, a),
                "logp": logp[sel].reshape(-1),
                "adv": (adv_p - adv_p.mean()) / max(adv_p.std(), 1e-4),
                "target": target[sel].reshape(-1),
            }
        return out

    def update(self, batch: dict[str, dict[str, np.ndarray]]) -> None:
        tr = self.cfg.training
        torch.set_num_threads(self.threads)
        tensors = {p: {c: torch.from_numpy(v) for c, v in cols.items()} for p, cols in batch.items()}
        for _ in range(tr.num_epochs):
            for p, cols in tensors.items():
                module, opt = self.modules[p], self.optimisers[p]
                n = len(cols["logp"])
                for idx in torch.tensor_split(torch.randperm(n), max(1, round(n / tr.minibatch_size))):
                    mb = {c: v[idx] for c, v in cols.items()}
                    out = module._forward({Columns.OBS: mb["obs"]})[Columns.ACTION_DIST_INPUTS]
                    mean, log_std = out[:, : self.a], out[:, self.a :]
                    new_logp = (-0.5 * ((mb["act"] - mean) / log_std.exp()) ** 2 - log_std).sum(1)
                    ratio = torch.exp(new_logp - 0.5 * self.a * np.log(2 * np.pi) - mb["logp"])
                    clipped = torch.clamp(ratio, 0.8, 1.2)
                    pg = -torch.min(mb["adv"] * ratio, mb["adv"] * clipped).mean()
                    value = module.compute_values({Columns.OBS: mb["obs"]})
                    loss = pg + 0.5 * ((value - mb["target"]) ** 2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

    def iteration(self) -> tuple[float, float, int]:
        """(sampling seconds, update seconds, env steps) of one iteration."""
        t0 = time.perf_counter()
        batch = self.sample()
        t1 = time.perf_counter()
        self.update(batch)
        return t1 - t0, time.perf_counter() - t1, self.steps * self.core.n_envs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="default")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    cfg = load_config(args.config)
    bare = BarePPO(cfg, load_env_data(cfg), args.envs, args.threads)
    bare.iteration()
    for _ in range(args.iterations):
        s, u, n = bare.iteration()
        print(f"{n / (s + u):,.0f} env steps/s (sampling {s:.2f} s, update {u:.2f} s)")


if __name__ == "__main__":
    main()
