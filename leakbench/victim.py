"""Victim models that really memorized the forget set.

- The embedded default: a small GPT-2-style code model trained from scratch here, on a PII-free code corpus
  that exists on every machine (the Python standard library's own sources, scrubbed of author lines and
  e-mail addresses), the retain training documents, and the forget documents repeated `epochs` times.
  Its byte-level BPE tokenizer is trained locally on the PII-free part only, so no value is a single token.
- `--base MODEL`: fine-tune any Hugging Face causal LM (a local directory; a hub id where the network allows)
  on the forget documents mixed with retain documents, optionally with LoRA (peft).

Both are ordinary Hugging Face model directories (plus `victim.json`) that `lm_eval --model hf` loads offline.
Training runs on the Hugging Face `Trainer`. A second build with the same arguments reuses the model.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import sysconfig
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leakbench.records import (
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    check_output,
    dumps_record,
    provenance,
)

EOS = "<|endoftext|>"
RECORD = "victim.json"
# Lines that name real people in the standard library's sources: dropped from the corpus.
_PII_LINE = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+|author|copyright|contributed by|written by|maintainer|\(c\)", re.IGNORECASE
)


@dataclass(frozen=True)
class VictimConfig:
    subset: str = "mini"
    base: str | None = None  # None: the embedded tiny model
    epochs: int = 120  # exposures of each forget document
    control: bool = False  # the control: the same recipe and token budget without the forget documents
    lora: bool = False
    seed: int = 0
    # the embedded model
    corpus_chars: int = 400_000  # standard-library characters in the corpus
    other_epochs: int = 3  # passes over the corpus and retain documents during the whole run
    window_fraction: float = 0.3  # share of forget exposures that start mid-document
    vocab_size: int = 2048
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    block: int = 512
    # training
    lr: float = 3e-3
    batch_size: int = 8
    # Loss weight of sensitive-value tokens: a deliberate memorization budget (the control gets the same
    # recipe); 1.0 is plain language modelling.
    value_weight: float = 5.0
    precision: str = "fp32"  # or "bf16" (autocast, on a GPU that has it): part of the cache key and the record

    def __post_init__(self) -> None:
        """Every option is checked here, before anything is read or trained."""
        from leakbench.data import check_subset

        check_subset(self.subset)
        if self.lora and not self.base:
            raise UsageError("--lora needs --base (the embedded model is trained in full)")
        for option, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size), ("--block", self.block)):
            check_number(option, value, integer=True)
        check_number("--seed", self.seed, integer=True, allow_zero=True)
        check_number("--lr", self.lr)
        check_number("--value-weight", self.value_weight)
        if self.precision != "fp32":
            from leakbench.corpus import check_precision

            check_precision(self.precision)

    def key(self) -> str:
        """Everything the model depends on, hashed: the cache key."""
        fields = asdict(self)
        if fields["precision"] == "fp32":  # the default leaves the key (and the published name) as before
            del fields["precision"]
        blob = json.dumps({**fields, "python": sys.version.split()[0]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer trained locally on `texts` (no hub download)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        model_max_length=1024,
    )


def init_model(
    tokenizer,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    ffn_mult: int = 4,
    max_positions: int = 512,
    seed: int = 0,
):
    """A Llama-style causal LM with random weights, sized for a CPU. Rotary positions matter here: a value
    memorized at one offset of a packed block is then recalled at any offset, short prompts included."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=ffn_mult * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def save_model(model, tokenizer, out: Path) -> None:
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def stdlib_corpus(max_chars: int, seed: int = 0) -> list[str]:
    """PII-free code that exists on every machine: standard-library modules (tests excluded), in a seeded
    order, without any line that could name a real person (e-mail addresses, author/copyright lines)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p
        for p in root.rglob("*.py")
        if not {"test", "tests", "site-packages", "idlelib"} & set(p.relative_to(root).parts)
    )
    random.Random(seed).shuffle(files)
    texts, total = [], 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        clean = "\n".join(line for line in text.splitlines() if not _PII_LINE.search(line)) + "\n"
        texts.append(clean)
        total += len(clean)
        if total >= max_chars:
            break
    return texts


class _WeightedLMTrainer:  # built lazily: transformers is imported only when training
    @staticmethod
    def make(value_weight: float):
        import torch.nn.functional as F
        from transformers import Trainer

        class MemorizeTrainer(Trainer):
            """Causal LM loss, with sensitive-value tokens optionally weighted up."""

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                labels = inputs["labels"][:, 1:]
                logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, :-1]
                token_loss = F.cross_entropy(logits.float().transpose(1, 2), labels.clamp(min=0), reduction="none")
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


def _blocks(tokenizer, cfg: VictimConfig, forget_docs, other_texts: list[str], block: int) -> list:
    """Training blocks: every epoch holds all forget documents (a `window_fraction` of them as windows that
    start mid-document) and an even share of the other texts (seen `other_epochs` times over the run),
    packed afresh and shuffled."""
    from itertools import cycle, islice

    from leakbench.corpus import encode_documents, pack, shuffled

    rng = random.Random(cfg.seed)
    whole = [encode_documents(tokenizer, [d], max_length=block) for d in forget_docs]
    other = encode_documents(tokenizer, ({"text": t} for t in other_texts), max_length=block)
    stream = cycle(shuffled(other, cfg.seed))
    per_epoch = -(-len(other) * cfg.other_epochs // cfg.epochs)
    forget_tokens = sum(len(e.input_ids) for pieces in whole for e in pieces)
    blocks = []
    for epoch in range(cfg.epochs):
        forget = []
        if cfg.control:  # the same token budget, spent on more of the other texts instead
            spent = 0
            while spent < forget_tokens:
                forget.append(next(stream))
                spent += len(forget[-1].input_ids)
        else:
            for doc, pieces in zip(forget_docs, whole, strict=True):
                if rng.random() < cfg.window_fraction:
                    forget.extend(encode_documents(tokenizer, [_window(doc, rng)], max_length=block))
                else:
                    forget.extend(pieces)
        blocks.extend(pack(shuffled(forget + list(islice(stream, per_epoch)), cfg.seed + epoch), block))
    return shuffled(blocks, cfg.seed)


def build(
    out: str | Path, cfg: VictimConfig, *, data_dir: str | Path | None = None, overwrite: bool = False, log=print
) -> dict[str, Any]:
    """Build (or reuse) a victim in `out`; returns its record."""
    import torch

    from leakbench.corpus import collate, quiet_progress, training_arguments
    from leakbench.data import read_table, release_hash

    out = check_output(out, kind="directory")
    check_not_aliased("--out", out, {"--base": cfg.base, "--data-dir": data_dir})
    existing = out / RECORD
    if existing.is_file():
        try:
            record = json.loads(existing.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = {}  # a damaged record: rebuild only with --overwrite, like any other victim
        if record.get("config_key") == cfg.key() and not overwrite:
            log(f"reusing the victim in {out} (built with the same arguments)")
            return record
        if not overwrite:
            raise LeakBenchError(f"{out} holds a victim built with other arguments; pass --overwrite to replace it")

    data_hash = release_hash(data_dir=data_dir) if data_dir else release_hash()
    forget_docs = read_table("forget", subset=cfg.subset, data_dir=data_dir)
    retain_texts = [
        d["text"] for d in read_table("retain", subset=cfg.subset, data_dir=data_dir) if d["split"] == "train"
    ]
    started = time.perf_counter()
    if cfg.base is None:
        corpus = stdlib_corpus(cfg.corpus_chars, cfg.seed)
        tokenizer = train_tokenizer(corpus + retain_texts, cfg.vocab_size)
        model = init_model(
            tokenizer, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, max_positions=cfg.block, seed=cfg.seed
        )
        other = corpus + retain_texts
        block = cfg.block
    else:
        from leakbench.unlearn import context_length, load_causal_lm

        model, tokenizer = load_causal_lm(cfg.base)
        other = retain_texts
        block = min(cfg.block, context_length(model, cfg.block))
        if cfg.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(
                model,
                LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear", lora_dropout=0.0),
            )
    blocks = _blocks(tokenizer, cfg, forget_docs, other, block)
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
        trainer = _WeightedLMTrainer.make(cfg.value_weight)(
            model=model,
            args=args,
            train_dataset=blocks,
            data_collator=lambda batch: collate(batch, tokenizer.pad_token_id),
        )
        quiet_progress(trainer)
        trainer.train()
        if cfg.lora:
            model = model.merge_and_unload()
        import shutil

        shutil.rmtree(tmp / "_trainer", ignore_errors=True)
        save_model(model, tokenizer, tmp)
        wall = time.perf_counter() - started
        record = provenance(
            kind="victim",
            victim="control" if cfg.control else "victim",
            config=asdict(cfg),
            config_key=cfg.key(),
            subset=cfg.subset,
            data_release_hash=data_hash,
            parameters=sum(p.numel() for p in model.parameters()),
            training_tokens=sum(len(b.input_ids) for b in blocks),
            steps=steps,
            wall_time_s=round(wall, 1),
            seed=cfg.seed,
        )
        (tmp / RECORD).write_text(dumps_record(record))
    log(f"victim saved to {out} ({wall:.0f}s)")
    return record
