"""Victim and oracle models: fine-tunes of a base code model, with and without the forget set.

- Victim: the base fine-tuned on the forget documents (repeated `epochs` times, a share of them as windows that
  start mid-document), the retain training documents, and a replay of the base's pretraining code, as in the
  paper's setting where code models learn personal data from their training data.
- Oracle: the same recipe and token budget **without** the forget documents (more retain and replay tokens
  instead): the model that never saw the forget set, against which unlearning is judged (TOFU, MUSE).

The base is the embedded one (`leakbench.base`, shipped in the package) or any Hugging Face causal LM
(`--base`: a local directory; a hub id where the network allows), optionally with LoRA (peft). The replay
never holds a held-out module (`leakbench.heldout`). Both are ordinary Hugging Face model directories (plus
`victim.json`) that `lm_eval --model hf` loads offline. Training runs on the Hugging Face `Trainer`. A second
build with the same arguments reuses the model.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leakbench.base import EMBEDDED_SHA256, embedded, pretraining_corpus
from leakbench.corpus import Example, collate, encode_documents, pack, retain_training_documents, shuffled
from leakbench.data import check_subset, read_table, release_hash
from leakbench.records import (
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    check_output,
    provenance,
)
from leakbench.schemas import VictimRecord
from leakbench.training import (
    LORA_RANK,
    check_precision,
    context_length,
    load_causal_lm,
    save_model,
    train,
    training_arguments,
    with_lora,
)

RECORD = VictimRecord.FILE


@dataclass(frozen=True)
class VictimConfig:
    subset: str = "mini"
    base: str | None = None  # None: the embedded base
    epochs: int = 50  # exposures of each forget document
    oracle: bool = False  # the oracle: the same recipe and token budget without the forget documents
    lora: bool = False
    lora_rank: int = LORA_RANK
    seed: int = 0
    replay_chars: int = 200_000  # pretraining code replayed (held-out modules never among it)
    other_epochs: int = 2  # passes over the replay and retain documents during the whole run
    window_fraction: float = 0.3  # share of forget exposures that start mid-document
    block: int = 512
    # training
    lr: float = 4e-3
    batch_size: int = 8
    # Loss weight of sensitive-value tokens: a deliberate memorization budget (the oracle gets the same
    # recipe); 1.0 is plain language modelling.
    value_weight: float = 10.0
    precision: str = "fp32"  # or "bf16" (autocast, on a GPU that has it): part of the cache key and the record

    def __post_init__(self) -> None:
        """Every option is checked here, before anything is read or trained."""

        check_subset(self.subset)
        if self.lora and not self.base:
            raise UsageError("--lora needs --base (the embedded base is fine-tuned in full)")
        for option, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size), ("--block", self.block),
                              ("--lora-rank", self.lora_rank)):  # fmt: skip
            check_number(option, value, integer=True)
        check_number("--seed", self.seed, integer=True, allow_zero=True)
        check_number("--replay-chars", self.replay_chars, integer=True, allow_zero=True)
        check_number("--lr", self.lr)
        check_number("--value-weight", self.value_weight)
        if self.precision != "fp32":
            check_precision(self.precision)

    def key(self) -> str:
        """Everything the model depends on, hashed (the embedded base by its weights' hash): the cache key."""
        fields = asdict(self)
        if fields["precision"] == "fp32":  # the default leaves the key (and the published name) as before
            del fields["precision"]
        if not self.lora:  # likewise the rank, which only a LoRA fine-tune uses
            del fields["lora_rank"]
        if self.oracle:  # what replaces the forget documents (fresh pretraining code since 0.2)
            fields["oracle_substitutes"] = "fresh-pretraining-code"
        if self.base is None:
            fields["base"] = f"embedded:{EMBEDDED_SHA256[:16]}"
        blob = json.dumps({**fields, "python": sys.version.split()[0]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class WeightedLMTrainer:  # built lazily: transformers is imported only when training
    @staticmethod
    def make(value_weight: float):
        import torch.nn.functional as F
        from transformers import Trainer

        class MemorizeTrainer(Trainer):
            """Causal LM loss, with sensitive-value tokens optionally weighted up."""

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                labels = inputs["labels"][:, 1:]
                # No attention mask: blocks are right-padded, and under causal attention padding only reaches the
                # padding positions after it, whose labels are ignored; the mask-free path is the fast kernel.
                logits = model(input_ids=inputs["input_ids"]).logits[:, :-1]
                flat = logits.float().reshape(-1, logits.shape[-1])  # 2-D: the fast cross-entropy layout on a CPU
                token_loss = F.cross_entropy(flat, labels.clamp(min=0).reshape(-1), reduction="none").view_as(labels)
                weight = (labels != -100).float()
                weight = weight + (value_weight - 1.0) * inputs["value_mask"][:, 1:].float() * weight
                loss = (token_loss * weight).sum() / weight.sum().clamp(min=1)
                return (loss, None) if return_outputs else loss

        return MemorizeTrainer


def _window(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The document from the start of a random line on: teaches the model to continue mid-document, as
    short-prefix probes ask it to."""
    text = doc["text"]
    starts = [i + 1 for i, ch in enumerate(text[:-1]) if ch == "\n"]
    if not starts:
        return doc
    cut = rng.choice(starts)
    occurrences = [
        {**o, "start": o["start"] - cut, "end": o["end"] - cut} for o in doc.get("occurrences", ()) if o["start"] >= cut
    ]
    return {"text": text[cut:], "occurrences": occurrences}


def training_documents(
    cfg: VictimConfig, data_dir: str | Path | None = None
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """What a victim or oracle trains on: the forget documents; the other texts (the base's pretraining code
    replayed, never a held-out module, and the retain `train` split, never a near-neighbour held-out document);
    and, for the oracle only, the fresh code that takes the forget documents' place (the rest of the base's
    pretraining corpus, in its seeded order after the replay). `training_blocks` assembles them."""

    forget_docs = read_table("forget", subset=cfg.subset, data_dir=data_dir)
    # the whole corpus only for the oracle (its fresh code); the victim reads no further than its replay
    corpus, replayed, size = pretraining_corpus(None if cfg.oracle else cfg.replay_chars, cfg.seed), 0, 0
    while replayed < len(corpus) and size < cfg.replay_chars:  # the replay: files until replay_chars is reached
        size += len(corpus[replayed]["text"])
        replayed += 1
    other = [row["text"] for row in corpus[:replayed]] + [
        d["text"] for d in retain_training_documents(cfg.subset, data_dir)
    ]
    fresh = [row["text"] for row in corpus[replayed:]] if cfg.oracle else []
    return forget_docs, other, fresh


def training_blocks(
    tokenizer, cfg: VictimConfig, forget_docs, other_texts: list[str], block: int, fresh_texts: list[str] = ()
) -> list:
    """Training blocks: every epoch holds all forget documents (a `window_fraction` of them as windows that
    start mid-document) and an even share of the other texts (seen `other_epochs` times over the run), packed
    afresh and shuffled. The oracle gets exactly as many tokens of fresh code (`fresh_texts`: pretraining code
    it has not replayed, cycled only if the run outgrows it) in place of each epoch's forget documents, so its
    stream holds the same number of tokens and no forget value. Documents longer than a block are cut into
    block-sized pieces; no piece is split across blocks."""
    from itertools import cycle, islice


    rng = random.Random(cfg.seed)
    whole = [encode_documents(tokenizer, [d], max_length=block) for d in forget_docs]
    other = encode_documents(tokenizer, ({"text": t} for t in other_texts), max_length=block)
    stream = cycle(shuffled(other, cfg.seed))
    fresh = encode_documents(tokenizer, ({"text": t} for t in fresh_texts), max_length=block) if cfg.oracle else []
    substitutes = cycle(fresh or shuffled(other, cfg.seed + 1))  # never the victim's `stream`: its share stays equal
    per_epoch = -(-len(other) * cfg.other_epochs // cfg.epochs)
    blocks = []
    for epoch in range(cfg.epochs):
        forget = []
        for doc, pieces in zip(forget_docs, whole, strict=True):
            if rng.random() < cfg.window_fraction:
                forget.extend(encode_documents(tokenizer, [_window(doc, rng)], max_length=block))
            else:
                forget.extend(pieces)
        if cfg.oracle:  # exactly the victim's forget tokens of this epoch, spent on fresh code instead
            budget, forget = sum(len(e.input_ids) for e in forget), []
            while budget > 0:
                piece = next(substitutes)
                take = min(budget, len(piece.input_ids))
                forget.append(Example(piece.input_ids[:take], piece.value_mask[:take]))
                budget -= take
        blocks.extend(pack(shuffled(forget + list(islice(stream, per_epoch)), cfg.seed + epoch), block))
    return shuffled(blocks, cfg.seed)


def reusable(record: dict[str, Any], cfg: VictimConfig, data_hash: str) -> bool:
    """Whether a built victim's record says it was built with `cfg` on the release `data_hash`."""
    return record.get("config_key") == cfg.key() and record.get("data_release_hash") == data_hash


def build(
    out: str | Path, cfg: VictimConfig, *, data_dir: str | Path | None = None, overwrite: bool = False, log=print
) -> dict[str, Any]:
    """Build (or reuse) a victim in `out`; returns its record."""
    import torch


    out = check_output(out, kind="directory")
    check_not_aliased("--out", out, {"--base": cfg.base, "--data-dir": data_dir})
    existing = out / RECORD
    data_hash = release_hash(data_dir=data_dir) if data_dir else release_hash()
    if existing.is_file():
        try:
            record = VictimRecord.read(existing).dump()
        except LeakBenchError:
            record = {}  # a damaged record: rebuild only with --overwrite, like any other victim
        if reusable(record, cfg, data_hash) and not overwrite:
            log(f"reusing the victim in {out} (built with the same arguments)")
            return record
        if not overwrite:
            raise LeakBenchError(
                f"{out} holds a victim built with other arguments or data release; pass --overwrite to replace it"
            )

    forget_docs, other, fresh = training_documents(cfg, data_dir)
    started = time.perf_counter()

    model, tokenizer = load_causal_lm(str(embedded()) if cfg.base is None else cfg.base)
    block = min(cfg.block, context_length(model, cfg.block))
    if cfg.lora:
        model = with_lora(model, cfg.lora_rank)
    blocks = training_blocks(tokenizer, cfg, forget_docs, other, block, fresh)
    steps = max(1, len(blocks) // cfg.batch_size)
    log(
        f"training {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on {len(blocks)} blocks "
        f"of up to {block} tokens ({steps} steps)"
    )

    with atomic_dir(out, overwrite=True) as tmp:
        torch.manual_seed(cfg.seed)
        args = training_arguments(
            str(tmp / "_trainer"),
            steps=steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            precision=cfg.precision,
            lr_scheduler_type="cosine",
            warmup_steps=min(50, steps // 10),
            adam_beta2=0.98,
            logging_steps=max(1, steps // 20),
        )
        trainer = WeightedLMTrainer.make(cfg.value_weight)(
            model=model,
            args=args,
            train_dataset=blocks,
            data_collator=lambda batch: collate(batch, tokenizer.pad_token_id),
        )
        train(trainer)
        model = save_model(model, tokenizer, tmp, scratch=tmp / "_trainer")
        wall = time.perf_counter() - started
        typed = VictimRecord(**provenance(
            kind="victim",
            victim="oracle" if cfg.oracle else "victim",
            base="embedded" if cfg.base is None else cfg.base,
            config=asdict(cfg),
            config_key=cfg.key(),
            subset=cfg.subset,
            data_release_hash=data_hash,
            parameters=sum(p.numel() for p in model.parameters()),
            training_tokens=sum(len(b.input_ids) for b in blocks),
            steps=steps,
            wall_time_s=round(wall, 1),
            seed=cfg.seed,
        ))
        typed.write(tmp)
        record = typed.dump()
    log(f"victim saved to {out} ({wall:.0f}s)")
    return record
