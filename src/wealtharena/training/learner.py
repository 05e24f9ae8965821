"""A lean learner for batches that arrive ready: `ArrayPPOLearner`, `ArrayA2CLearner`.

RLlib's `Learner.update` turns a `MultiAgentBatch` into minibatches by slicing, concatenating and
shuffling `SampleBatch` objects, and checks every gradient tensor for NaN twice per step. With the
array runner's batches (training/rollout.py) the minibatches are index lists instead: the numpy
columns become tensors once and a minibatch is `index_select` on every column. One finiteness check
per step covers every gradient (RLlib's own handling applies when it fails).

The schedule makes `num_epochs` mean what it says for every policy: each epoch permutes each policy's
rows (numpy's global generator, which RLlib seeds and `restore_rng` moves on resume) and cuts them into
about rows / `minibatch_size` nearly equal minibatches; step i of the epoch trains every policy on its
i-th minibatch (a policy with fewer rows has fewer steps). RLlib's `MiniBatchCyclicIterator` instead
gives every policy `minibatch_size` rows per step until the policy with the most rows has made
`num_epochs` passes, so a policy with half the rows (the balanced profile's one agent against two)
makes twice the passes, and it does not shuffle before the first pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from wealtharena.training.a2c import A2CTorchLearner


class TensorMinibatches:
    """Minibatches of a `MultiAgentBatch` of numpy columns: `num_epochs` passes over every policy's rows
    (module docstring)."""

    def __init__(
        self,
        batch: MultiAgentBatch,
        num_epochs: int,
        minibatch_size: int | None,
        shuffle: bool,
        device: Any = None,
    ):
        self.columns = {mid: {k: _tensor(v, device) for k, v in pb.items()} for mid, pb in batch.policy_batches.items()}
        self.sizes = {mid: len(pb) for mid, pb in batch.policy_batches.items()}
        self.env_steps = batch.env_steps()
        self.num_epochs = num_epochs
        self.minibatch_size = minibatch_size
        self.shuffle = shuffle
        self.device = device

    def __iter__(self) -> Iterator[MultiAgentBatch]:
        for _ in range(self.num_epochs):
            chunks = {mid: self._chunks(n) for mid, n in self.sizes.items()}
            for step in range(max(len(c) for c in chunks.values())):
                out = {mid: SampleBatch(self._rows(mid, c[step])) for mid, c in chunks.items() if step < len(c)}
                yield MultiAgentBatch(out, self.env_steps)

    def _permutation(self, n: int) -> torch.Tensor:
        return torch.from_numpy(np.random.permutation(n)) if self.shuffle else torch.arange(n)

    def _rows(self, mid: str, idx: torch.Tensor | None) -> dict[str, torch.Tensor]:
        cols = self.columns[mid]
        return cols if idx is None else {k: v.index_select(0, idx) for k, v in cols.items()}

    def _chunks(self, n: int) -> list[torch.Tensor | None]:
        """One pass over n rows: a permutation (or the rows in order) cut into about n / minibatch_size
        nearly equal minibatches; [None] (the whole batch as it is) when minibatch_size is None."""
        if not self.minibatch_size:
            return [None]
        order = self._permutation(n)
        parts = max(1, round(n / self.minibatch_size))
        return [c.to(self.device) for c in torch.tensor_split(order, parts)]


def _tensor(x: np.ndarray, device: Any) -> torch.Tensor:
    """A tensor over `x` (copied when `x` is read-only, as arrays from Ray's object store are)."""
    x = np.ascontiguousarray(x)
    return torch.from_numpy(x if x.flags.writeable else x.copy()).to(device)


class LeanUpdates:
    """Learner mixin: `TensorMinibatches` for ready numpy batches, one finiteness check per step."""

    _params: dict[Any, torch.Tensor]

    def _create_iterator_if_necessary(
        self,
        *,
        training_data: Any,
        num_total_minibatches: int = 0,
        num_epochs: int = 1,
        minibatch_size: int | None = None,
        shuffle_batch_per_epoch: bool = False,
        **kwargs: Any,
    ) -> Any:
        batch = training_data.batch
        ready = (
            training_data.episodes is None
            and isinstance(batch, MultiAgentBatch)
            and num_total_minibatches == 0
            and all(isinstance(v, np.ndarray) for pb in batch.policy_batches.values() for v in pb.values())
        )
        if not ready:
            return super()._create_iterator_if_necessary(  # type: ignore[misc]
                training_data=training_data,
                num_total_minibatches=num_total_minibatches,
                num_epochs=num_epochs,
                minibatch_size=minibatch_size,
                shuffle_batch_per_epoch=shuffle_batch_per_epoch,
                **kwargs,
            )
        for mid in list(batch.policy_batches):
            if not self.should_module_be_updated(mid, batch):  # type: ignore[attr-defined]
                del batch.policy_batches[mid]
        return TensorMinibatches(
            batch,
            num_epochs,
            minibatch_size,
            shuffle_batch_per_epoch and num_epochs > 1,
            self._device,  # type: ignore[attr-defined]
        )

    def apply_gradients(self, gradients_dict: dict[Any, torch.Tensor]) -> None:
        grads = [g for g in gradients_dict.values() if g is not None]
        plain = self._lr_scheduler_classes is None and self._grad_scalers is None  # type: ignore[attr-defined]
        if plain and grads and bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):
            for pid, grad in gradients_dict.items():
                self._params[pid].grad = grad
            for module_id, names in self._module_optimizers.items():  # type: ignore[attr-defined]
                for name in names:
                    self.get_optimizer(module_id, name).step()  # type: ignore[attr-defined]
            return
        super().apply_gradients(gradients_dict)  # type: ignore[misc]


class ArrayPPOLearner(LeanUpdates, PPOTorchLearner):
    """RLlib's PPO learner with lean minibatches (module docstring)."""


class ArrayA2CLearner(LeanUpdates, A2CTorchLearner):
    """This project's A2C learner with lean minibatches (module docstring)."""
