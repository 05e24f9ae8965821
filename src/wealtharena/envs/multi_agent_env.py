"""MultiAgentTradingEnv: 5 agents (by default) on one market clock, as an RLlib `MultiAgentEnv`;
MultiAgentTradingVectorEnv: many such episodes stepped as one array (see envs/vector_env.py)."""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv

from wealtharena.envs.core import TradingCore
from wealtharena.envs.data import EnvData
from wealtharena.envs.spec import EnvOptions, EnvShell
from wealtharena.errors import ActionError


class MultiAgentTradingEnv(EnvShell, MultiAgentEnv):
    """The agents of `config.agents` (ids like `conservative_0`), each with its profile's reward
    weights and risk limits, trade independent portfolios on one shared market view.

    Observations, actions, rewards, episodes and infos are those of `TradingEnv` (see its
    docstring), per agent, plus a shared "desk" block: `desk.<TICKER>`, the other agents' mean
    weight in each asset, so agents can see crowding and diversify. An agent that is terminated
    (ruin, drawdown halt) leaves the episode; the others go on. `"__all__"` ends the episode
    when every agent is done or the data window ran out.

    `env_config`: the options of every shell (`wealtharena.envs.spec`): `{"config": <Config | dict | path
    | name>, "overrides": {...}, "split": "train", "random_start": None, "step_infos": True}`. The trainer
    sets `step_infos: False`: its env runners then return an agent's info only on that agent's last step
    (where the episode's reward terms are), since RLlib does not learn from infos. `data` (an `EnvData`) is
    what the env runs on; without it the env loads its own (training's env creators hand every runner the
    driver's copy).
    """

    def __init__(self, env_config: dict[str, Any] | None = None, data: EnvData | None = None):
        opts = EnvOptions.parse(env_config)
        super().__init__()
        cfg = opts.config
        self.agent_ids = [a.id for a in cfg.agents]
        core = TradingCore(cfg, [a.profile for a in cfg.agents], opts.split, data=data, desk=cfg.env.desk_observation)
        self._setup(opts, core)
        self.step_infos = opts.step_infos
        self.possible_agents = list(self.agent_ids)
        self.agents = list(self.agent_ids)
        self.observation_spaces = {a: self.single_obs_space for a in self.agent_ids}
        self.action_spaces = {a: self.single_act_space for a in self.agent_ids}
        self._actions = np.zeros((self.core.k, self.core.n + 1))
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        length = self._episode(options)
        obs = self.core.reset(self._rng if length else None, length)
        self.agents = list(self.agent_ids)
        obs = obs.copy()
        infos = self.core.infos(range(self.core.k), [False] * self.core.k)
        return dict(zip(self.agent_ids, obs)), dict(zip(self.agent_ids, infos))

    def step(self, action_dict: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        actions = self._actions
        actions.fill(0.0)
        for k, agent in enumerate(self.agent_ids):
            if self.core.done[k]:
                continue
            if agent not in action_dict:
                raise ActionError(f"no action for active agent '{agent}' (active: {self.agents})")
            actions[k] = (
                action_dict[agent]
                if np.shape(action_dict[agent]) == actions[k].shape
                else _bad(agent, action_dict[agent], actions[k].shape)
            )
        was_active = ~self.core.done
        obs, rewards, terminated, truncated_envs = self.core.step(actions)
        truncated = bool(truncated_envs[0])
        out_obs: dict[str, Any] = {}
        out_rew: dict[str, Any] = {}
        out_term: dict[str, Any] = {}
        out_trunc: dict[str, Any] = {}
        out_info: dict[str, Any] = {}
        rows = np.flatnonzero(was_active).tolist()
        term, rew = terminated.tolist(), rewards.tolist()
        final = [bool(term[k] or truncated) for k in rows]
        infos = self.core.step_infos(rows, final, self.step_infos)
        obs = obs.copy()
        for i, k in enumerate(rows):
            agent = self.agent_ids[k]
            out_obs[agent] = obs[k]
            out_rew[agent] = rew[k]
            out_term[agent] = term[k]
            out_trunc[agent] = truncated and not term[k]
            out_info[agent] = infos[i]
        all_done = bool(self.core.done.all()) or truncated
        out_term["__all__"] = bool(self.core.done.all())
        out_trunc["__all__"] = bool(truncated)
        self.agents = [a for k, a in enumerate(self.agent_ids) if not self.core.done[k]] if not all_done else []
        return out_obs, out_rew, out_term, out_trunc, out_info


class _EnvSlot:
    """One episode slot of a `MultiAgentTradingVectorEnv`, as RLlib's `MultiAgentEnvRunner` sees its
    sub-envs (`env.envs[i].unwrapped`): agent ids and spaces only; the stepping is the vector env's."""

    def __init__(self, vec: MultiAgentTradingVectorEnv):
        self.possible_agents = list(vec.agent_ids)
        self.observation_spaces = vec.single_observation_spaces
        self.action_spaces = vec.single_action_spaces

    @property
    def unwrapped(self) -> _EnvSlot:
        return self

    def get_observation_space(self, agent_id: str) -> gym.Space:
        return self.observation_spaces[agent_id]

    def get_action_space(self, agent_id: str) -> gym.Space:
        return self.action_spaces[agent_id]


class MultiAgentTradingVectorEnv(EnvShell, VectorMultiAgentEnv):
    """`num_envs` copies of `MultiAgentTradingEnv` (same agents, spaces, rewards, desk block and
    per-agent infos; see its docstring) stepped together, in RLlib's vector multi-agent API:
    `step` takes a list of per-env action dicts and returns lists of per-env dicts.
    NEXT_STEP autoreset, as RLlib's own `SyncVectorMultiAgentEnv`."""

    metadata = {"autoreset_mode": "next_step"}

    def __init__(self, num_envs: int = 8, env_config: dict[str, Any] | None = None, data: EnvData | None = None):
        opts = EnvOptions.parse(env_config)
        cfg = opts.config
        self.num_envs = int(num_envs)
        self.agent_ids = [a.id for a in cfg.agents]
        profiles = [a.profile for a in cfg.agents]
        desk = cfg.env.desk_observation
        self._setup(opts, TradingCore(cfg, profiles, opts.split, data=data, desk=desk, n_envs=self.num_envs))
        self.single_observation_spaces: dict[str, gym.Space] = {a: self.single_obs_space for a in self.agent_ids}
        self.single_action_spaces: dict[str, gym.Space] = {a: self.single_act_space for a in self.agent_ids}
        self.single_observation_space = gym.spaces.Dict(self.single_observation_spaces)
        self.single_action_space = gym.spaces.Dict(self.single_action_spaces)
        self.step_infos = opts.step_infos
        self.envs = [_EnvSlot(self) for _ in range(self.num_envs)]
        self._actions = np.zeros((self.core.k, self.core.n + 1))
        self._pending = np.zeros(self.num_envs, dtype=bool)
        self._length: int | None = None
        self._np_random = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[list[dict], list[dict]]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        self._length = self._episode(options)
        obs = self.core.reset(self._rng(), self._length).copy()
        self._pending.fill(False)
        ids, a = self.agent_ids, self.core.n_agents
        infos = self.core.infos(range(self.core.k), [False] * self.core.k)
        return (
            [dict(zip(ids, obs[e * a : (e + 1) * a])) for e in range(self.num_envs)],
            [dict(zip(ids, infos[e * a : (e + 1) * a])) for e in range(self.num_envs)],
        )

    def step(self, actions: list[dict[str, np.ndarray]]) -> tuple[list[dict[str, Any]], ...]:
        core, ids, a = self.core, self.agent_ids, self.core.n_agents
        if len(actions) != self.num_envs:
            raise ActionError(f"expected {self.num_envs} action dicts (one per env), got {len(actions)}")
        buf = self._actions
        shape = buf.shape[1:]
        try:  # usual case: every agent of every env acted
            stacked = np.asarray([d[aid] for d in actions for aid in ids], dtype=np.float64)
            fast = stacked.shape == buf.shape and not (self._pending.any() or core.done.any())
            if fast:
                buf[:] = stacked
        except (KeyError, ValueError, TypeError):
            fast = False
        if not fast:
            self._gather_actions(actions, buf, shape)
        was_active = ~core.done
        restart = self._pending.copy() if self._pending.any() else None
        obs, rewards, terminated, truncated = core.step(buf, restart, self._rng(), self._length)
        obs = obs.copy()
        rew = rewards.tolist()
        term = terminated.tolist()
        done = core.done
        trunc = truncated.tolist()
        live: np.ndarray = was_active if restart is None else was_active | np.repeat(restart, a)
        rows = np.flatnonzero(live).tolist()
        final = [term[k] or trunc[k // a] for k in rows]
        infos = iter(core.step_infos(rows, final, self.step_infos))
        full = cast(list[bool], live.reshape(self.num_envs, a).all(axis=1).tolist())
        acting: list[bool] = live.tolist()
        out: tuple[list[dict[str, Any]], ...] = ([], [], [], [], [])
        o: dict[str, Any]
        r: dict[str, Any]
        te: dict[str, Any]
        tr: dict[str, Any]
        inf: dict[str, Any]
        for e in range(self.num_envs):
            trunc_e = bool(trunc[e])
            lo, hi = e * a, (e + 1) * a
            if full[e]:  # every agent of the episode acted
                o, r, te = dict(zip(ids, obs[lo:hi])), dict(zip(ids, rew[lo:hi])), dict(zip(ids, term[lo:hi]))
                tr = {aid: trunc_e and not x for aid, x in zip(ids, term[lo:hi])}
                inf = {aid: next(infos) for aid in ids}
                all_term = bool(done[lo:hi].all())
                te["__all__"], tr["__all__"] = all_term, trunc_e
                self._pending[e] = all_term or trunc_e
                for lst, d in zip(out, (o, r, te, tr, inf)):
                    lst.append(d)
                continue
            o, r, te, tr, inf = {}, {}, {}, {}, {}
            for j, aid in enumerate(ids):
                k = e * a + j
                if not acting[k]:
                    continue
                o[aid] = obs[k]
                r[aid] = rew[k]
                te[aid] = term[k]
                tr[aid] = trunc_e and not term[k]
                inf[aid] = next(infos)
            all_term = bool(done[e * a : (e + 1) * a].all())
            te["__all__"], tr["__all__"] = all_term, trunc_e
            self._pending[e] = all_term or trunc_e
            for lst, d in zip(out, (o, r, te, tr, inf)):
                lst.append(d)
        return out

    def _gather_actions(self, actions: list[dict[str, np.ndarray]], buf: np.ndarray, shape: tuple[int, ...]) -> None:
        """Actions of the agents that act (not done, env not restarting), with a clear error for
        a missing or misshapen one; the rest stay 0 (ignored by the core)."""
        ids, a, done = self.agent_ids, self.core.n_agents, self.core.done
        buf.fill(0.0)
        for e, action_dict in enumerate(actions):
            if self._pending[e]:
                continue
            for j, aid in enumerate(ids):
                row = e * a + j
                if done[row]:
                    continue
                act = action_dict.get(aid)
                if act is None:
                    raise ActionError(f"env {e}: no action for active agent '{aid}'")
                if np.shape(act) != shape:
                    raise ActionError(
                        f"env {e}: action of agent '{aid}' must have shape {shape} "
                        f"(one score per asset, then cash); got {np.shape(act)}"
                    )
                buf[row] = act

    def _rng(self) -> np.random.Generator | None:
        return self._np_random if self._length else None


def _bad(agent: str, action: Any, shape: tuple[int, ...]) -> np.ndarray:
    raise ActionError(
        f"action of agent '{agent}' must have shape {shape} (one score per asset, then cash); got {np.shape(action)}"
    )
