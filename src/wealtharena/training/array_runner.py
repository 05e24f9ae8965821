"""`ArrayEnvRunner`: an RLlib env runner that samples the vector env's episodes as arrays.

RLlib's runners move every step through Python objects: a dict per agent and env for
observations, actions, rewards and infos, connector pipelines per step, an episode object that
appends each item. For this env that machinery, not the simulation or the network, set the pace
of training. This runner keeps RLlib's contracts (it is built, seeded, synced, checkpointed,
restored and placed on a cluster's nodes as any `EnvRunner`, and logs the same metrics under the
same names) but its `sample()` runs the `TradingCore` of one `MultiAgentTradingVectorEnv` directly:

    for each step t of the rollout (B episodes x A agents = K rows):
        obs[t] = the core's observations [K, D]
        one forward pass per policy over its rows: the action distribution's mean, the value
        actions = mean + std * noise (the runner's own seeded numpy stream); their log-probability
        core.step(actions) -> rewards, terminated, truncated; a finished episode restarts at once

into arrays preallocated for the rollout, then computes generalised advantage estimation over
the [T, K] arrays and returns a `Rollout` (training/rollout.py): per policy, flat numpy columns
ready for the learner. No episode objects, no per-step dicts, no per-agent Python loop.

Differences from RLlib's runner, on purpose:
- an episode that ends restarts in the same step (RLlib's vector envs spend a step on the reset);
- of the callbacks, only `on_episode_end` is called, with an `EpisodeSummary` (each agent's return,
  length and last info); per-step callbacks are the per-step machinery this runner drops;
- the policy must be a diagonal Gaussian with a state-independent log-std (both networks of
  training/models.py and RLlib's MLP with `free_log_std`): the runner samples it in numpy.

`sample()` returns a `Rollout`, not episodes: `ArrayPPO` / `ArrayA2C` (training/array_algorithm.py)
consume it. Selected with `training.runner: array` (the default for PPO and A2C).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ray.rllib.callbacks.utils import make_callback
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import (
    EPISODE_AGENT_RETURN_MEAN,
    EPISODE_AGENT_STEPS,
    EPISODE_DURATION_SEC_MEAN,
    EPISODE_LEN_MAX,
    EPISODE_LEN_MEAN,
    EPISODE_LEN_MIN,
    EPISODE_MODULE_RETURN_MEAN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
    SAMPLE_TIMER,
)

from wealtharena.training.env_runner import VectorEnvRunner
from wealtharena.training.models import CRITIC
from wealtharena.training.rollout import PolicySamples, Rollout, gae

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class EpisodeSummary:
    """What `on_episode_end` callbacks get from an `ArrayEnvRunner`: each agent's return, length
    and last info (with `episode_reward_terms`), read the way RLlib's `MultiAgentEpisode` is."""

    returns: dict[str, float]
    lengths: dict[str, int]
    infos: dict[str, dict[str, Any]]

    def get_infos(self, indices: int = -1, env_steps: bool = False) -> dict[str, dict[str, Any]]:
        """Each agent's last info (the only one kept; `indices` must be -1)."""
        if indices != -1:
            raise IndexError("an EpisodeSummary keeps each agent's last info only (indices=-1)")
        return self.infos

    def get_return(self) -> float:
        return float(sum(self.returns.values()))

    def __len__(self) -> int:
        return max(self.lengths.values(), default=0)


def log_std_of(module: Any) -> torch.Tensor:
    """The state-independent log-std parameter of a diagonal Gaussian policy module."""
    log_std = getattr(module, "log_std", None)
    if log_std is None:  # RLlib's default MLP with free_log_std keeps it in its policy head
        log_std = getattr(getattr(module, "pi", None), "log_std", None)
    if not isinstance(log_std, torch.Tensor):
        raise TypeError(
            f"the array runner samples a diagonal Gaussian with a state-independent log-std; "
            f"{type(module).__name__} has none (RLlib's MLP needs free_log_std): use training.runner: vector"
        )
    return log_std


class ArrayEnvRunner(VectorEnvRunner):
    """See the module docstring. One `MultiAgentTradingVectorEnv` of `num_envs_per_env_runner` episodes."""

    env: Any

    def make_env(self) -> None:
        super().make_env()
        env, core = self.env, self.env.core
        self._agent_of_row = [env.agent_ids[k % core.n_agents] for k in range(core.k)]
        module_of_row = [self.config.policy_mapping_fn(aid, None) for aid in self._agent_of_row]
        self._module_of_row = module_of_row
        self._rows_of = {
            m: np.asarray([k for k, mk in enumerate(module_of_row) if mk == m], dtype=np.int64)
            for m in dict.fromkeys(module_of_row)
        }
        self._length = env.cfg.env.episode_length if env.random_start else None
        self._obs: np.ndarray | None = None
        self._ep_return = np.zeros(core.k)
        self._row_steps = np.zeros(core.k, dtype=np.int64)
        self._ep_steps = np.zeros(core.n_envs, dtype=np.int64)
        self._ep_start = np.zeros(core.n_envs)

    def _start(self) -> None:
        """(Re)start every episode with generators drawn from the runner's seed (RLlib's seed + worker
        index, moved on resume): episode starts and exploration noise each have their own stream."""
        root = np.random.SeedSequence(None if self._seed is None else int(self._seed))
        starts, noise = root.spawn(2)
        self._start_rng = np.random.default_rng(starts) if self.env.random_start else None
        self._noise_rng = np.random.default_rng(noise)
        core = self.env.core
        # Every episode would otherwise start (and end) on the same step of the rollout: the first one of
        # each slot gets a length drawn from 1 .. episode_length, which spreads episode ends over time.
        first = None
        if self._start_rng is not None and self._length:
            first = self._start_rng.integers(1, self._length + 1, size=core.n_envs)
        self._obs = core.reset(self._start_rng, self._length, lengths=first).copy()
        self._ep_return[:] = 0.0
        self._row_steps[:] = 0
        self._ep_steps[:] = 0
        self._ep_start[:] = time.perf_counter()
        self._needs_initial_reset = False

    def sample(
        self,
        *,
        num_timesteps: int | None = None,
        num_episodes: int | None = None,
        explore: bool | None = None,
        random_actions: bool = False,
        force_reset: bool = False,
    ) -> Rollout:
        """At least `num_timesteps` env steps (rounded up to whole steps of every episode) as a `Rollout`."""
        if num_episodes is not None or random_actions:
            raise ValueError("ArrayEnvRunner samples timesteps of the policies (no num_episodes, no random_actions)")
        if self._needs_initial_reset or force_reset or self._obs is None:
            self._start()
        if num_timesteps is None:
            num_timesteps = self.config.get_rollout_fragment_length(self.worker_index) * self.num_envs
        with self.metrics.log_time(SAMPLE_TIMER):
            return self._rollout(int(num_timesteps), self.config.explore if explore is None else explore)

    def _rollout(self, num_timesteps: int, explore: bool) -> Rollout:
        core = self.env.core
        b, a, k = core.n_envs, core.n_agents, core.k
        steps = max(1, -(-num_timesteps // b))
        act_dim = core.n + 1
        critic = core.forward is not None
        obs_buf = np.empty((steps, k, core.dim), dtype=np.float32)
        act_buf = np.empty((steps, k, act_dim), dtype=np.float32)
        mean_buf = np.empty((steps, k, act_dim), dtype=np.float32)
        logp_buf = np.empty((steps, k), dtype=np.float32)
        val_buf = np.empty((steps, k), dtype=np.float64)
        next_val = np.zeros((steps, k), dtype=np.float64)  # 0 where an episode terminated
        rew_buf = np.empty((steps, k), dtype=np.float64)
        end_buf = np.zeros((steps, k), dtype=bool)
        active = np.empty((steps, k), dtype=bool)
        crit_buf = np.empty((steps, k, core.forward.table[0].size), dtype=np.float32) if critic else None
        modules = {m: self.module[m] for m in self._rows_of}
        log_std = np.empty((k, act_dim), dtype=np.float32)
        for m, rows in self._rows_of.items():
            if modules[m].training:
                modules[m].eval()  # once: RLlib's forward_* switch modes on every call
            log_std[rows] = log_std_of(modules[m]).detach().numpy()
        std = np.exp(log_std)
        logp_const = -log_std.sum(axis=1) - act_dim * HALF_LOG_2PI
        all_rows = np.arange(k)
        obs = self._obs
        assert obs is not None
        with torch.no_grad():
            for t in range(steps):
                obs_buf[t] = obs
                np.logical_not(core.done, out=active[t])
                if crit_buf is not None:
                    crit_buf[t] = core.critic_inputs(all_rows)
                for mid, rows in self._rows_of.items():
                    batch = self._batch(obs_buf[t, rows], crit_buf[t, rows] if crit_buf is not None else None)
                    module = modules[mid]
                    out = module._forward_exploration(batch) if explore else module._forward_inference(batch)
                    mean_buf[t, rows] = out[Columns.ACTION_DIST_INPUTS][:, :act_dim].numpy()
                    val_buf[t, rows] = module.compute_values(batch).numpy()
                if explore:
                    noise = self._noise_rng.standard_normal((k, act_dim), dtype=np.float32)
                    np.multiply(noise, std, out=act_buf[t])
                    act_buf[t] += mean_buf[t]
                    logp_buf[t] = logp_const - 0.5 * np.einsum("ij,ij->i", noise, noise)
                else:
                    act_buf[t] = mean_buf[t]
                    logp_buf[t] = logp_const
                was_active = active[t]
                obs, rewards, terminated, truncated = core.step(act_buf[t].astype(np.float64))
                rew_buf[t] = rewards
                self._ep_return += np.where(was_active, rewards, 0.0)
                self._row_steps += was_active
                self._ep_steps += 1
                env_done = truncated | core.done.reshape(b, a).all(axis=1)
                cut = np.repeat(truncated, a) & was_active & ~terminated  # bootstrap from the last obs
                end_buf[t] = terminated | cut
                if cut.any():
                    rows = np.flatnonzero(cut)
                    next_val[t, rows] = self._values(modules, obs, rows)
                if env_done.any():
                    envs = np.flatnonzero(env_done)
                    self._episodes_ended(envs)
                    obs = core.reset(self._start_rng, self._length, envs=envs)
            # the rollout stops mid-episode: bootstrap from the next observation
            going_on = np.flatnonzero(~core.done & ~end_buf[-1])
            if len(going_on):
                next_val[-1, going_on] = self._values(modules, obs, going_on)
        self._obs = obs.copy()
        next_val[:-1] = np.where(end_buf[:-1], next_val[:-1], val_buf[1:])
        adv, targets = gae(rew_buf, val_buf, next_val, end_buf | ~active, self.config.gamma, self.config.lambda_)
        rollout = Rollout(env_steps=steps * b)
        for mid, rows in self._rows_of.items():
            ti, ri = np.nonzero(active[:, rows])  # time-major, then row
            ks = rows[ri]
            n = len(ks)
            dist = np.empty((n, 2 * act_dim), dtype=np.float32)
            dist[:, :act_dim] = mean_buf[ti, ks]
            dist[:, act_dim:] = log_std[rows[0]]
            rollout.policies[mid] = PolicySamples(
                obs=obs_buf[ti, ks],
                actions=act_buf[ti, ks],
                logp=logp_buf[ti, ks],
                dist_inputs=dist,
                vf_preds=val_buf[ti, ks].astype(np.float32),
                advantages=adv[ti, ks],
                value_targets=targets[ti, ks],
                critic=crit_buf[ti, ks] if crit_buf is not None else None,
            )
        self._log_sampled(rollout, active)
        return rollout

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _batch(obs: np.ndarray, critic: np.ndarray | None) -> dict[str, torch.Tensor]:
        batch = {Columns.OBS: torch.from_numpy(obs)}
        if critic is not None:
            batch[CRITIC] = torch.from_numpy(critic)
        return batch

    def _values(self, modules: dict[str, Any], obs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """V of the current observation `obs[rows]` (each row by its own policy's value function)."""
        core = self.env.core
        out = np.empty(len(rows))
        for mid, own in self._rows_of.items():
            pick = np.flatnonzero(np.isin(rows, own))
            if len(pick):
                sub = rows[pick]
                crit = core.critic_inputs(sub) if core.forward is not None else None
                batch = self._batch(np.ascontiguousarray(obs[sub], dtype=np.float32), crit)
                out[pick] = modules[mid].compute_values(batch).numpy()
        return out

    def _episodes_ended(self, envs: np.ndarray) -> None:
        """Log the finished episodes of `envs` (RLlib's episode metrics) and call `on_episode_end`."""
        core = self.env.core
        a = core.n_agents
        win = max(1, math.ceil(self.config.metrics_num_episodes_for_smoothing / (self.config.num_env_runners or 1)))
        now = time.perf_counter()
        for e in envs.tolist():
            rows = list(range(e * a, (e + 1) * a))
            agents = [self._agent_of_row[k] for k in rows]
            returns = {aid: float(self._ep_return[k]) for aid, k in zip(agents, rows)}
            lengths = {aid: int(self._row_steps[k]) for aid, k in zip(agents, rows)}
            modules: dict[str, float] = {}
            for k in rows:
                modules[self._module_of_row[k]] = modules.get(self._module_of_row[k], 0.0) + float(self._ep_return[k])
            ret, length = sum(returns.values()), int(self._ep_steps[e])
            m = self.metrics
            m.log_value(NUM_EPISODES, 1, reduce="sum")
            m.log_value(NUM_EPISODES_LIFETIME, 1, reduce="lifetime_sum")
            m.log_dict(
                {
                    EPISODE_LEN_MEAN: length,
                    EPISODE_RETURN_MEAN: ret,
                    EPISODE_DURATION_SEC_MEAN: now - self._ep_start[e],
                    EPISODE_AGENT_RETURN_MEAN: returns,
                    EPISODE_AGENT_STEPS: lengths,
                    EPISODE_MODULE_RETURN_MEAN: modules,
                },
                window=win,
            )
            m.log_dict({EPISODE_LEN_MIN: length, EPISODE_RETURN_MIN: ret}, reduce="min", window=win)
            m.log_dict({EPISODE_LEN_MAX: length, EPISODE_RETURN_MAX: ret}, reduce="max", window=win)
            if self._callbacks or self.config.callbacks_on_episode_end:
                infos = core.infos(rows, [True] * a)
                summary = EpisodeSummary(returns, lengths, dict(zip(agents, infos)))
                make_callback(
                    "on_episode_end",
                    callbacks_objects=self._callbacks,
                    callbacks_functions=self.config.callbacks_on_episode_end,
                    kwargs=dict(
                        episode=summary,
                        env_runner=self,
                        metrics_logger=m,
                        env=self.env,
                        rl_module=self.module,
                        env_index=e,
                        prev_episode_chunks=[],
                    ),
                )
            self._ep_return[rows] = 0.0
            self._row_steps[rows] = 0
            self._ep_steps[e] = 0
            self._ep_start[e] = now

    def _log_sampled(self, rollout: Rollout, active: np.ndarray) -> None:
        """RLlib's sampling counters: env steps, agent steps per agent, module steps per module."""
        m = self.metrics
        m.log_value(NUM_ENV_STEPS_SAMPLED, rollout.env_steps, reduce="sum")
        m.log_value(NUM_ENV_STEPS_SAMPLED_LIFETIME, rollout.env_steps, reduce="lifetime_sum", with_throughput=True)
        self.num_env_steps_sampled_lifetime += rollout.env_steps
        per_row = active.sum(axis=0)
        per_agent: dict[str, int] = {}
        for k, n in enumerate(per_row.tolist()):
            per_agent[self._agent_of_row[k]] = per_agent.get(self._agent_of_row[k], 0) + n
        for aid, n in per_agent.items():
            m.log_value((NUM_AGENT_STEPS_SAMPLED, aid), n, reduce="sum")
            m.log_value((NUM_AGENT_STEPS_SAMPLED_LIFETIME, aid), n, reduce="lifetime_sum")
        for mid, samples in rollout.policies.items():
            m.log_value((NUM_MODULE_STEPS_SAMPLED, mid), len(samples), reduce="sum")
            m.log_value((NUM_MODULE_STEPS_SAMPLED_LIFETIME, mid), len(samples), reduce="lifetime_sum")

    def get_metrics(self) -> Any:
        return self.metrics.reduce()
