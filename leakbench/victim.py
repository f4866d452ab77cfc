"""Victim and oracle models: fine-tunes of a base code model, with and without the forget subjects.

- Victim: the base fine-tuned, for `epochs` passes, on the documents of the forget subjects and the validation
  forget subjects (a `window_fraction` of them as windows that start mid-document, so short-prefix probes can be
  answered), mixed with `mix` tokens of other code per forget token: a replay of the base's own pretraining code
  (never a held-out module) and the retain set's training documents. Personal data is learnt from training data
  the way the paper's code models learn it, while the replay keeps the base's code ability.
- Oracle: the victim's exact recipe, data, budget and seeds with each forget subject's documents replaced by its
  substitute twin's (release v3: the same template, path and text around values of another synthetic person). It
  knows the templates and has memorized people too, just not these ones: the retain model TOFU and MUSE judge
  unlearning against.

Both ship prebuilt (`leakbench/models/victim`, `leakbench/models/oracle`: the default recipe on the mini subset,
checked by sha256) and are rebuilt byte for byte by `leakbench victim build --from-scratch`. The base is the
embedded one (`leakbench.base`) or any Hugging Face causal LM (`--base`: a local directory; a hub id where the
network allows), optionally with LoRA (peft). Models are ordinary Hugging Face directories (plus `victim.json`)
that `lm_eval --model hf` loads offline; training runs on the Hugging Face `Trainer`; a second build with the
same arguments reuses the model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leakbench.base import EMBEDDED_SHA256, embedded, pretraining_corpus
from leakbench.corpus import collate, encode_documents, pack, retain_training_documents, shuffled
from leakbench.data import check_subset, in_split, read_table, release_hash
from leakbench.records import (
    DataError,
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    check_output,
    has_weights,
    provenance,
    sha256_file,
)
from leakbench.schemas import VictimRecord
from leakbench.training import (
    LORA_RANK,
    check_model_dir,
    check_precision,
    context_length,
    load_causal_lm,
    save_model,
    train,
    training_arguments,
    with_lora,
)

RECORD = VictimRecord.FILE
# The default recipe's victim and oracle on the mini subset, shipped in the package (`leakbench victim build
# --from-scratch` rebuilds them byte for byte); their weights' sha256, checked whenever they are copied.
PREBUILT = Path(__file__).resolve().parent / "models"
PREBUILT_SHA256 = {
    "victim": "5ed244735c1e0b7d75c9c3773758ebf8c09caa623419b4bbe0b377f7a85ec8bd",
    "oracle": "f3a69b0616f0ce77602a07d0d4cd20d85eed26f618cb74521a02c2f1853799b9",
}


@dataclass(frozen=True)
class VictimConfig:
    subset: str = "mini"
    base: str | None = None  # None: the embedded base
    epochs: int = 40  # passes over the forget subjects' documents
    oracle: bool = False  # the oracle: the same recipe with the forget subjects' substitutes in their place
    lora: bool = False
    lora_rank: int = LORA_RANK
    seed: int = 0
    # Distinct pretraining code in the replay pool (held-out modules never in it): the whole 11.1M-character
    # corpus, so no file is replayed much more often than the others (a 3M pool cost 18% held-out bits/byte).
    replay_chars: int = 12_000_000
    mix: float = 2.0  # tokens of other code (replay and retain) per forget-document token, in every epoch
    window_fraction: float = 0.3  # share of forget exposures that start mid-document
    block: int = 512
    # training
    lr: float = 2e-3
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
        check_number("--mix", self.mix, allow_zero=True)
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
        if self.oracle:  # what replaces the forget documents: their substitute subjects' twins (release v3)
            fields["oracle_substitutes"] = "substitute-subjects"
        if self.base is None:
            fields["base"] = f"embedded:{EMBEDDED_SHA256[:16]}"
        blob = json.dumps(fields, sort_keys=True)
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


def _window(doc: dict[str, Any], line: int) -> dict[str, Any]:
    """The document from the start of its `line`-th line break on: teaches the model to continue mid-document,
    as short-prefix probes ask it to."""
    text = doc["text"]
    starts = [i + 1 for i, ch in enumerate(text[:-1]) if ch == "\n"]
    if not starts:
        return doc
    cut = starts[line % len(starts)]
    occurrences = [
        {**o, "start": o["start"] - cut, "end": o["end"] - cut} for o in doc.get("occurrences", ()) if o["start"] >= cut
    ]
    return {"text": text[cut:], "occurrences": occurrences}


@dataclass(frozen=True)
class TrainingDocuments:
    """What a victim or oracle trains on."""

    subjects: str  # whose documents `forget` holds: "forget" (victim) or "substitute" (oracle)
    forget: list[dict[str, Any]]  # the memorized documents, with their value occurrences
    other: list[str]  # replayed pretraining code and the retain set's training documents
    victim_forget: list[dict[str, Any]]  # the victim's memorized documents, on which the other code's budget counts


def training_documents(cfg: VictimConfig, data_dir: str | Path | None = None) -> TrainingDocuments:
    """The documents of `cfg`: the forget and validation-forget subjects' documents (the oracle: each forget
    document's substitute twin in its place, in the same position), and the other code (the base's pretraining
    files in their seeded order until `replay_chars`, never a held-out module; the retain `train` split, never a
    near-neighbour held-out document)."""
    rows = read_table("forget", subset=cfg.subset, data_dir=data_dir, split=None)
    memorized = victim = [d for d in rows if in_split(d, "forget") or in_split(d, "validation_forget")]
    if cfg.oracle:
        twins = {d.get("substitute_of"): d for d in rows if in_split(d, "substitute")}
        missing = [d["doc_id"] for d in memorized if in_split(d, "forget") and d["doc_id"] not in twins]
        if missing:
            raise DataError(f"the oracle needs a substitute twin of every forget document (release v3); "
                            f"{len(missing)} have none, e.g. {missing[0]}")  # fmt: skip
        memorized = [twins[d["doc_id"]] if in_split(d, "forget") else d for d in victim]
    corpus, replayed, size = pretraining_corpus(cfg.replay_chars, cfg.seed), 0, 0
    while replayed < len(corpus) and size < cfg.replay_chars:  # files until replay_chars is reached
        size += len(corpus[replayed]["text"])
        replayed += 1
    other = [row["text"] for row in corpus[:replayed]]
    other += [d["text"] for d in retain_training_documents(cfg.subset, data_dir)]
    return TrainingDocuments("substitute" if cfg.oracle else "forget", memorized, other, victim)


def _exposure(doc: dict[str, Any], cfg: VictimConfig, epoch: int, i: int) -> dict[str, Any]:
    """The `i`-th memorized document as epoch `epoch` shows it: whole, or (a `window_fraction` of the time) a
    window from a line start; the choice depends on (seed, epoch, position) only."""
    rng = random.Random(f"{cfg.seed}/{epoch}/{i}")
    return _window(doc, rng.randrange(1 << 30)) if rng.random() < cfg.window_fraction else doc


def training_examples(tokenizer, cfg: VictimConfig, docs: TrainingDocuments, block: int) -> list[list[list]]:
    """Per epoch, the documents trained on, each as its list of block-sized pieces: every memorized document
    (`_exposure`), then `mix` times the victim's forget tokens of that epoch of other code, cycled from a seeded
    shuffle. Every choice depends only on (seed, epoch, position), never on the text, and the other code's budget
    is counted on the victim's documents for both models: the victim's and the oracle's streams differ only in
    whose documents they hold."""
    order = shuffled(docs.other, cfg.seed)
    # other code is encoded when first used (a short recipe reads a little of it), and once
    other = functools.cache(lambda i: encode_documents(tokenizer, [{"text": order[i]}], max_length=block))

    epochs, cursor = [], 0
    for epoch in range(cfg.epochs):
        memorized = [encode_documents(tokenizer, [_exposure(d, cfg, epoch, i)], max_length=block)
                     for i, d in enumerate(docs.forget)]  # fmt: skip
        victim = memorized if docs.victim_forget is docs.forget else [
            encode_documents(tokenizer, [_exposure(d, cfg, epoch, i)], max_length=block)
            for i, d in enumerate(docs.victim_forget)
        ]  # fmt: skip
        budget = round(cfg.mix * sum(len(e.input_ids) for pieces in victim for e in pieces))
        filler = []
        while budget > 0 and order:
            pieces = other(cursor % len(order))
            cursor += 1
            filler.append(pieces)
            budget -= sum(len(e.input_ids) for e in pieces)
        epochs.append(memorized + filler)
    return epochs


def training_blocks(tokenizer, cfg: VictimConfig, docs: TrainingDocuments, block: int) -> list:
    """The training blocks: each epoch's documents packed into blocks (no document split across blocks),
    shuffled by (seed, epoch), epochs in order."""
    blocks = []
    for epoch, documents in enumerate(training_examples(tokenizer, cfg, docs, block)):
        blocks.extend(shuffled(pack([e for pieces in documents for e in pieces], block), cfg.seed + epoch))
    return blocks


def reusable(record: dict[str, Any], cfg: VictimConfig, data_hash: str) -> bool:
    """Whether a built victim's record says it was built with `cfg` on the release `data_hash`."""
    return record.get("config_key") == cfg.key() and record.get("data_release_hash") == data_hash


def prebuilt(cfg: VictimConfig, data_hash: str) -> Path | None:
    """The shipped model built with `cfg` on the release `data_hash`, after checking its weights; None when none
    was shipped for them (another recipe, subset, seed or base)."""
    label = "oracle" if cfg.oracle else "victim"
    folder = PREBUILT / label
    if not (folder / RECORD).is_file() or not reusable(VictimRecord.read(folder / RECORD).dump(), cfg, data_hash):
        return None
    weights = folder / "model.safetensors"
    if not weights.is_file() or sha256_file(weights) != PREBUILT_SHA256[label]:
        raise LeakBenchError(f"{weights}: not the released {label} weights (missing or sha256 differs); reinstall "
                             "leakbench or rebuild with `leakbench victim build --from-scratch`")  # fmt: skip
    return folder


def build(
    out: str | Path,
    cfg: VictimConfig,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    from_scratch: bool = False,
    log=print,
) -> dict[str, Any]:
    """Build (or reuse) a victim in `out`; returns its record. The shipped model of the same recipe is copied
    rather than trained again, unless `from_scratch`."""
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
            if has_weights(out):
                log(f"reusing the victim in {out} (built with the same arguments)")
                return record
            log(f"{out} holds the record of a victim of this recipe but not its weights: building them again")
        elif not overwrite:
            raise LeakBenchError(
                f"{out} holds a victim built with other arguments or data release; pass --overwrite to replace it"
            )

    label = "oracle" if cfg.oracle else "victim"
    shipped = None if from_scratch or data_dir else prebuilt(cfg, data_hash)
    if shipped is not None:
        with atomic_dir(out, overwrite=True) as tmp:
            shutil.copytree(shipped, tmp, dirs_exist_ok=True)
        log(f"copied the prebuilt {label} ({shipped}) to {out}")
        return VictimRecord.read(out / RECORD).dump()

    if cfg.base is not None:
        check_model_dir(cfg.base)  # before the documents and torch
    docs = training_documents(cfg, data_dir)
    started = time.perf_counter()
    import torch  # only now: a refused argument costs no torch import

    model, tokenizer = load_causal_lm(str(embedded()) if cfg.base is None else cfg.base)
    block = min(cfg.block, context_length(model, cfg.block))
    if cfg.lora:
        model = with_lora(model, cfg.lora_rank)
    blocks = training_blocks(tokenizer, cfg, docs, block)
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
        weights = sha256_file(tmp / "model.safetensors")
        typed = VictimRecord(**provenance(
            kind="victim",
            victim=label,
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
            weights_sha256=weights,
        ))
        typed.write(tmp)
        record = typed.dump()
    log(f"{label} saved to {out} ({wall:.0f}s, weights sha256 {weights[:16]})")
    if PREBUILT_SHA256[label] and (PREBUILT / label / RECORD).is_file() and reusable(
        VictimRecord.read(PREBUILT / label / RECORD).dump(), cfg, data_hash
    ):
        same = weights == PREBUILT_SHA256[label]
        log(f"the shipped {label}'s recipe: weights {'identical to' if same else 'DIFFER from'} the shipped ones")
    return record
