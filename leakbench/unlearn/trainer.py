"""The shared unlearning trainer: one Hugging Face `Trainer` subclass; each method overrides `compute_loss`.

Batches pair forget documents with retain documents (`forget_*` and `retain_*` tensors). Because this is a
plain `Trainer`, `accelerate launch` gives multi-GPU, FSDP or DeepSpeed without any code here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import Trainer

from leakbench.corpus import IGNORE, Example, collate


class PairedDataset(torch.utils.data.Dataset):
    """Item i: forget example i (cycling), with a retain example drawn by a seeded generator."""

    def __init__(self, forget: Sequence[Example], retain: Sequence[Example], length: int, seed: int) -> None:
        if not forget or not retain:
            raise ValueError("unlearning needs forget and retain documents")
        self.forget, self.retain, self.length = forget, retain, length
        rng = random.Random(seed)
        self.retain_order = [rng.randrange(len(retain)) for _ in range(length)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Example, Example]:
        return self.forget[i % len(self.forget)], self.retain[self.retain_order[i]]


class PairCollator:
    def __init__(self, pad_id: int, values_only: bool) -> None:
        self.pad_id, self.values_only = pad_id, values_only

    def __call__(self, pairs: Sequence[tuple[Example, Example]]) -> dict[str, torch.Tensor]:
        forget = collate([f for f, _ in pairs], self.pad_id, values_only=self.values_only)
        retain = collate([r for _, r in pairs], self.pad_id)
        batch = {f"forget_{k}": v for k, v in forget.items() if k != "value_mask"}
        batch.update({f"retain_{k}": v for k, v in retain.items() if k != "value_mask"})
        return batch


def token_logprobs(
    model, ids: torch.Tensor, attention: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labels, their mask, and the full next-token log-distributions."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    target = labels[:, 1:]
    mask = target != IGNORE
    logp = F.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * mask, mask, logp


def nll(model, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """Mean token negative log-likelihood of the `prefix` (forget/retain) documents."""
    picked, mask, _ = token_logprobs(
        model, batch[f"{prefix}_input_ids"], batch[f"{prefix}_attention_mask"], batch[f"{prefix}_labels"]
    )
    return -picked.sum() / mask.sum().clamp(min=1)


class UnlearningTrainer(Trainer):
    """Base class: holds the method's hyper-parameters and the frozen reference model (when needed)."""

    method: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = False

    def __init__(
        self, *args: Any, ref_model=None, retain_weight: float = 1.0, beta: float | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.ref_model = ref_model
        self.retain_weight = retain_weight
        self.beta = beta

    def reference(self, fn):
        """Run `fn(reference_model)` without gradients: a frozen copy, or the base model under LoRA."""
        with torch.no_grad():
            if self.ref_model is not None:
                return fn(self.ref_model)
            with self.model.disable_adapter():  # peft: the adapters off is the original model
                return fn(self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.unlearning_loss(model, inputs)
        return (loss, None) if return_outputs else loss

    def unlearning_loss(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError
