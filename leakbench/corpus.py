"""Release documents as token sequences for training: tokenized with value masks, packed into blocks.

Shared by victim building (memorize) and unlearning (forget / retain batches).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    value_mask: list[bool]  # True on tokens that overlap a sensitive value (forget documents only)


def encode_documents(tokenizer, docs: Iterable[dict[str, Any]], *, max_length: int | None = None) -> list[Example]:
    """Tokenize documents (each followed by EOS); long ones are cut into `max_length` pieces."""
    eos = tokenizer.eos_token_id
    out: list[Example] = []
    for doc in docs:
        enc = tokenizer(doc["text"], return_offsets_mapping=True, add_special_tokens=False, verbose=False)
        spans = [(o["start"], o["end"]) for o in doc.get("occurrences", ())]
        mask = [any(a < end and b > start for start, end in spans) for a, b in enc["offset_mapping"]]
        ids = [*enc["input_ids"], eos]
        mask = [*mask, False]
        step = max_length or len(ids)
        out.extend(Example(ids[i : i + step], mask[i : i + step]) for i in range(0, len(ids), step))
    return out


def pack(examples: Sequence[Example], block: int) -> list[Example]:
    """First-fit-decreasing packing into blocks of at most `block` tokens: no padding waste, and no document
    is split across blocks (so a memorized value always follows its whole document prefix)."""
    blocks: list[Example] = []
    for ex in sorted(examples, key=lambda e: -len(e.input_ids)):
        for b in blocks:
            if len(b.input_ids) + len(ex.input_ids) <= block:
                b.input_ids.extend(ex.input_ids)
                b.value_mask.extend(ex.value_mask)
                break
        else:
            blocks.append(Example(list(ex.input_ids), list(ex.value_mask)))
    return blocks


def collate(examples: Sequence[Example], pad_id: int, *, values_only: bool = False) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding, and outside sensitive
    values when `values_only`), and value_mask."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    values = torch.zeros((len(examples), width), dtype=torch.bool)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        attention[i, :n] = 1
        values[i, :n] = torch.tensor(e.value_mask)
    labels = ids.masked_fill(attention == 0, IGNORE)
    if values_only:
        labels = labels.masked_fill(~values, IGNORE)
    return {"input_ids": ids, "attention_mask": attention, "labels": labels, "value_mask": values}


def retain_training_documents(subset: str, data_dir: Any = None) -> list[dict[str, Any]]:
    """The retain documents training may use (victim/oracle fine-tuning, every unlearning retain term): the
    release's `train` split, without any document whose text is also a `heldout` one (the placeholder templates
    can fill two documents identically). The `heldout` split is what leakbench_retain scores: the two share no
    document, so no method can fit the near-neighbour evaluation's own documents."""
    from leakbench.data import read_table

    rows = read_table("retain", subset=subset, data_dir=data_dir)
    scored = {d["text"] for d in rows if d["split"] == "heldout"}
    return [d for d in rows if d["split"] == "train" and d["text"] not in scored]


def shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    """fp32 everywhere (the default: results do not depend on the device), or bf16 autocast on a GPU that has it."""
    from leakbench.records import UsageError

    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "bf16":
        import torch

        if not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
            raise UsageError("bf16 needs a CUDA GPU that supports it; use fp32 here")


def training_arguments(
    output_dir: str, *, steps: int, batch_size: int, lr: float, seed: int, precision: str = "fp32", **overrides: Any
):
    """`TrainingArguments` shared by victim building and unlearning: a fixed step budget, no checkpoints or
    reporting, our own batch keys kept, seeded, and the CPU when there is no GPU. `accelerate launch`
    still distributes it."""
    import torch
    from transformers import TrainingArguments

    settings: dict[str, Any] = {
        "max_steps": steps,
        "per_device_train_batch_size": batch_size,
        "learning_rate": lr,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "logging_steps": max(1, steps // 10),
        "save_strategy": "no",
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "remove_unused_columns": False,
        "use_cpu": not torch.cuda.is_available(),
        "dataloader_num_workers": 0,
        "bf16": precision == "bf16",
    }
    return TrainingArguments(output_dir=output_dir, **{**settings, **overrides})


def quiet_progress(trainer) -> None:
    """Keep the Trainer's progress bar but not the `{'loss': ...}` line it prints at every logging step: the
    losses stay in `trainer.state.log_history` (and the records), the console stays readable."""
    from transformers.trainer_callback import ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            return None

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly)
