"""The shared unlearning trainer: one Hugging Face `Trainer` subclass. A method whose loss is a forget term plus a
retain term overrides `forget_loss` and `retain_loss` (and then takes sharpness-aware steps when its hyper-parameters
hold `rho`); any other overrides `unlearning_loss`.

Batches are nested, as in OpenUnlearning: `inputs["forget"]` and `inputs["retain"]`, each a dict of tensors
(`input_ids`, `attention_mask`, `labels`, `value_mask`); preference methods' forget side holds
`inputs["forget"]["chosen"]` and `["rejected"]`. The reference model, when a method needs one, is moved to the
trained model's device and prepared by the trainer's `Accelerator` in evaluation mode. Because this is a plain
`Trainer`, `accelerate launch` gives multi-process, multi-GPU, FSDP or DeepSpeed runs without code here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import Trainer

from leakbench.corpus import IGNORE, Example, collate
from leakbench.records import LeakBenchError


@dataclass
class Pair:
    """A preference pair: one prompt (token ids) continued by a chosen and a rejected completion."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


@dataclass
class ForgetSource:
    """What a method may build its forget items from (`UnlearningTrainer.forget_items`): the model being
    unlearned, the forget documents (raw and encoded), its hyper-parameters; `record` collects what the method
    adds to unlearn.json."""

    method: str
    model: Any
    tokenizer: Any
    documents: list[dict[str, Any]]
    encoded: list[Example]
    hyper: dict[str, Any]
    seed: int
    max_prompt: int  # the longest preference prompt, in tokens
    subset: str
    split: str  # the release split of `documents` (forget, or the sweep's validation_forget)
    data_dir: str | Path | None
    log: Callable[[str], None]
    record: dict[str, Any] = field(default_factory=dict)
    # run another registered method at its defaults on a model, in place (UNDO's teacher); returns its wall time
    train_method: Callable[[str, Any], float] | None = None
    reference: Any = None  # set by the hook: the frozen model the round's trainer compares with (UNDO's teacher)
    wall_time_s: float = 0.0  # training the hook did itself (added to the record's wall time)


class PairedDataset(torch.utils.data.Dataset):
    """Item i: a forget item (each epoch a fresh seeded permutation) with a retain example drawn by a seeded
    generator. The order lives here, not in a sampler, so one process and N processes see the same global
    batches (the trainer reads the dataset in order)."""

    def __init__(self, forget: Sequence[Any], retain: Sequence[Example], length: int, seed: int) -> None:
        if not forget or not retain:
            raise ValueError("unlearning needs forget and retain items")
        self.forget, self.retain, self.length = forget, retain, length
        rng = random.Random(seed)
        order: list[int] = []
        while len(order) < length:
            epoch = list(range(len(forget)))
            rng.shuffle(epoch)
            order.extend(epoch)
        self.forget_order = order[:length]
        self.retain_order = [rng.randrange(len(retain)) for _ in range(length)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Any, Example]:
        return self.forget[self.forget_order[i]], self.retain[self.retain_order[i]]


def collate_pairs(pairs: Sequence[Pair], pad_id: int) -> dict[str, dict[str, torch.Tensor]]:
    """Prompt + chosen and prompt + rejected sequences, labels on the completion tokens only."""
    out = {}
    for side in ("chosen", "rejected"):
        examples = [Example(p.prompt + getattr(p, side), [False] * len(p.prompt) + [True] * len(getattr(p, side)))
                    for p in pairs]  # fmt: skip
        out[side] = collate(examples, pad_id, values_only=True)  # the completion is the "value" to score
    return out


class UnlearningCollator:
    """Nested batches: {"forget": documents or preference pairs, "retain": documents}."""

    def __init__(self, pad_id: int, values_only: bool = False) -> None:
        self.pad_id, self.values_only = pad_id, values_only

    def __call__(self, items: Sequence[tuple[Any, Example]]) -> dict[str, Any]:
        forget = [f for f, _ in items]
        retain = collate([r for _, r in items], self.pad_id)
        if isinstance(forget[0], Pair):
            return {"forget": collate_pairs(forget, self.pad_id), "retain": retain}
        return {"forget": collate(forget, self.pad_id, values_only=self.values_only), "retain": retain}


def token_logprobs(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labels (0 where ignored), their mask, and the full next-token
    log-distributions."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    target = batch["labels"][:, 1:]
    mask = target != IGNORE
    logp = F.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * mask, mask, logp


def sequence_logprob(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sequence's summed log-probability of its labelled tokens, and how many there are."""
    picked, mask, _ = token_logprobs(model, batch)
    return picked.sum(-1), mask.sum(-1)


def npo_loss(log_ratio: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO's bounded forget loss on sequence log-ratios log p_current - log p_reference."""
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()


def dpo_loss(chosen_ratio: torch.Tensor, rejected_ratio: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023) on the chosen and rejected sequence log-ratios against the reference."""
    return -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()


class UnlearningTrainer(Trainer):
    """Base class: the method's hyper-parameters and the frozen reference model (when the method needs one)."""

    method: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = False
    supports_lora: ClassVar[bool] = True  # False: the method changes every weight (UNDO's noise)

    @classmethod
    def forget_items(cls, source: ForgetSource, round: int) -> list[Any] | None:
        """The forget side of round `round`'s batches (rounds: the `rounds` hyper-parameter, else one); None
        stops training. Default: the encoded forget documents (their value tokens marked, for span losses)."""
        return source.encoded

    @staticmethod
    def prepare(model, hyper: dict[str, Any]) -> None:
        """Adjust the model before training (RMU: freeze all but the layers it trains); default: nothing."""

    def __init__(self, *args: Any, ref_model=None, hyper: dict[str, Any] | None = None, **kwargs: Any):
        if (hyper or {}).get("rho") and not self.splits_its_loss():
            raise LeakBenchError(f"{type(self).__name__}: `rho` (sharpness-aware steps) needs a loss split into "
                                 "forget_loss and retain_loss; this trainer overrides unlearning_loss")  # fmt: skip
        super().__init__(*args, **kwargs)
        self.hyper = dict(hyper or {})
        self.ref_model = self._prepare_reference(ref_model) if ref_model is not None else None

    def _prepare_reference(self, ref_model):
        """OpenUnlearning's order: frozen copy -> the trained model's device -> the accelerator, evaluation mode
        (no optimizer, no gradient sync), so it sits beside the trained model on any device or process."""
        ref_model = ref_model.to(self.args.device).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
        return self.accelerator.prepare_model(ref_model, evaluation_mode=True)

    def _get_train_sampler(self, train_dataset=None):
        # The dataset is already in its seeded order; reading it in order makes N processes match one.
        return torch.utils.data.SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def reference(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(reference_model)` without gradients: the frozen copy, or the base model under LoRA."""
        with torch.no_grad():
            if self.ref_model is not None:
                return fn(self.ref_model)
            model = self.accelerator.unwrap_model(self.model)
            with model.disable_adapter():  # peft: the adapters off is the original model
                return fn(model)

    def token_mean(self, total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """`total / count` over the global batch: with N processes, the tokens of all of them count (DDP then
        averages the N gradients), so a token-mean loss is the one a single process would compute."""
        world = self.args.world_size
        if world > 1:
            count = self.accelerator.reduce(count.detach().float(), reduction="sum") / world
        return total / count.clamp(min=1)

    def nll(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean token negative log-likelihood over the global batch's labelled tokens."""
        picked, mask, _ = token_logprobs(model, batch)
        return self.token_mean(-picked.sum(), mask.sum())

    def retain_nll(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        weight = self.hyper.get("retain_weight", 0.0)
        return weight * self.nll(model, inputs["retain"]) if weight else torch.zeros((), device=self.args.device)

    def kl_to_reference(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """KL(p_ref || p_current) per labelled position, averaged over the global batch's labelled positions."""
        _, mask, logp = token_logprobs(model, batch)
        _, _, ref_logp = self.reference(lambda m: token_logprobs(m, batch))
        kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
        return self.token_mean((kl * mask).sum(), mask.sum())

    def retain_kl(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        """w * KL(p_ref || p_current) on the retain documents."""
        weight = self.hyper.get("retain_weight", 0.0)
        if not weight:
            return torch.zeros((), device=self.args.device)
        return weight * self.kl_to_reference(model, inputs["retain"])

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.unlearning_loss(model, inputs)
        return (loss, None) if return_outputs else loss

    def unlearning_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        return self.forget_loss(model, inputs) + self.retain_loss(model, inputs)

    def forget_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def retain_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        return torch.zeros((), device=self.args.device)

    @classmethod
    def splits_its_loss(cls) -> bool:
        """Whether the method's loss is `forget_loss` + `retain_loss` (what a sharpness-aware step needs)."""
        return cls.forget_loss is not UnlearningTrainer.forget_loss and \
            cls.unlearning_loss is UnlearningTrainer.unlearning_loss  # fmt: skip

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        if not self.hyper.get("rho"):
            return super().training_step(model, inputs, num_items_in_batch)
        return self.sharpness_aware_step(model, inputs)

    def sharpness_aware_step(self, model, inputs) -> torch.Tensor:
        """Sharpness-aware unlearning (Fan et al. 2025, "Towards LLM Unlearning Resilient to Relearning Attacks: A
        Sharpness-Aware Minimization Perspective and Beyond", arXiv 2502.05374): the forget loss minimized at its
        worst point within a ball of radius `rho` around the weights, so that a small fine-tuning step (a
        relearning attack) cannot bring it back down; the retain loss at the weights themselves:

        min_theta  L_forget(theta + rho * g / ||g||) + L_retain(theta),   g = grad L_forget(theta)

        The retain gradient at theta, the ascent direction g (one extra forward and backward), the forget
        gradient at the perturbed weights, then the weights restored exactly before the optimizer step."""
        model.train()
        if callable(getattr(getattr(self, "optimizer", None), "train", None)):  # as Trainer's step (schedule-free)
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        scale = 1.0 / getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        with self.accelerator.no_sync(model):  # one gradient sync per step: after the perturbed forget pass
            retain = self.retain_loss(model, inputs)
            if retain.requires_grad:
                self.accelerator.backward(retain * scale)
            grads = torch.autograd.grad(self.forget_loss(model, inputs), params, allow_unused=True)
        if self.args.world_size > 1:  # the global batch's ascent direction, as one process would compute it
            grads = tuple(None if g is None else self.accelerator.reduce(g, reduction="mean") for g in grads)
        present = [g for g in grads if g is not None]
        saved = [p.detach().clone() for p in params]  # restored exactly, not by subtracting the shift back
        if present:
            norm = torch.sqrt(sum((g.float() ** 2).sum() for g in present))
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    if g is not None:
                        p.add_(g, alpha=self.hyper["rho"] / (norm.item() + 1e-12))
        forget = self.forget_loss(model, inputs)
        self.accelerator.backward(forget * scale)
        with torch.no_grad():
            for p, kept in zip(params, saved, strict=True):
                p.copy_(kept)
        return (forget + retain).detach() * scale
