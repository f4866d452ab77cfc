"""Release documents as token sequences for training: tokenized with value masks, packed into blocks.

Shared by victim building (memorize) and unlearning (forget / retain batches); training itself is `leakbench.training`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from leakbench.data import read_table

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

    rows = read_table("retain", subset=subset, data_dir=data_dir)
    scored = {d["text"] for d in rows if d["split"] == "heldout"}
    return [d for d in rows if d["split"] == "train" and d["text"] not in scored]


def shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out
