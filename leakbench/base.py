"""The embedded base: a small causal code LM pretrained here, from scratch, on code every machine has.

Corpus: the Python standard library's sources (tests, `site-packages` and `idlelib` excluded, and the
held-out modules of `leakbench.heldout` excluded), scrubbed of every line that could name a real person.
Tokenizer: byte-level BPE trained on that corpus only (no sensitive value is a single token). Model: a
Llama-style decoder (rotary positions, tied embeddings). Training: the Hugging Face `Trainer` on contiguous
blocks of the token stream, checkpointed so that an interrupted build resumes where it stopped.

The trained base ships in `leakbench/models/base/` (safetensors; its sha256 is `EMBEDDED_SHA256`), loadable
offline with `AutoModelForCausalLM.from_pretrained`. `leakbench run` never pretrains; `leakbench base build`
does, and CI tests the recipe at a toy scale.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leakbench.heldout import HELD_OUT, scrub, stdlib_root
from leakbench.records import (
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_number,
    check_output,
    provenance,
    sha256_file,
    write_text_atomic,
)
from leakbench.schemas import BaseModelRecord
from leakbench.training import save_model, train, training_arguments

EOS = "<|endoftext|>"
RECORD = BaseModelRecord.FILE
EMBEDDED = Path(__file__).resolve().parent / "models" / "base"
# sha256 of EMBEDDED/model.safetensors: set when the shipped base is rebuilt
EMBEDDED_SHA256 = "3bc3d75076234a0bf588e3f2f40cfb32b6cb957fcdcc65646d450d2ea6a38e42"
_EXCLUDED_DIRS = {"test", "tests", "site-packages", "idlelib"}


MIN_VOCAB = 257  # byte-level BPE: 256 byte tokens and the end-of-text token before any merge


@dataclass(frozen=True)
class BaseConfig:
    vocab_size: int = 4096
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    block: int = 512  # context length (max positions)
    tokens: int = 16_000_000  # training budget
    batch_size: int = 8  # blocks per step
    lr: float = 3e-3
    warmup_steps: int = 100
    corpus_chars: int | None = None  # None: the whole corpus; a number: a seeded sample of files (toy builds)
    seed: int = 0

    def __post_init__(self) -> None:
        for option in ("vocab_size", "hidden", "layers", "heads", "block", "tokens", "batch_size", "warmup_steps"):
            check_number(f"--{option.replace('_', '-')}", getattr(self, option), integer=True,
                         allow_zero=option == "warmup_steps")  # fmt: skip
        if self.vocab_size < MIN_VOCAB:
            raise UsageError(f"--vocab-size must be at least {MIN_VOCAB} (the 256 byte tokens of byte-level BPE and "
                             f"the end-of-text token), got {self.vocab_size}")  # fmt: skip
        check_number("--lr", self.lr)
        check_number("--corpus-chars", self.corpus_chars, integer=True)
        check_number("--seed", self.seed, integer=True, allow_zero=True)
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise UsageError(
                f"--hidden ({self.hidden}) must be --heads ({self.heads}) times an even head size (rotary positions)"
            )

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "python": sys.version.split()[0]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def steps(self) -> int:
        return max(1, self.tokens // (self.batch_size * self.block))


def corpus_files(root: Path | None = None) -> list[Path]:
    """The pretraining corpus' files: standard-library sources without tests and without held-out modules."""
    root = root or stdlib_root()
    return sorted(
        p
        for p in root.rglob("*.py")
        if not _EXCLUDED_DIRS & set(p.relative_to(root).parts) and p.relative_to(root).as_posix() not in HELD_OUT
    )


def pretraining_corpus(max_chars: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """The scrubbed corpus as `{"path", "sha256", "text"}` rows (path relative to the standard library), in
    a seeded order; `max_chars` stops after that many characters."""
    root = stdlib_root()
    files = corpus_files(root)
    random.Random(seed).shuffle(files)
    rows, total = [], 0
    for path in files:
        try:
            text = scrub(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        rows.append({"path": path.relative_to(root).as_posix(), "sha256": hashlib.sha256(text.encode()).hexdigest(),
                     "text": text})  # fmt: skip
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    return rows


def train_tokenizer(texts: list[str], vocab_size: int, max_length: int = 1024):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer trained locally on `texts` (no hub download)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS,
        model_max_length=max_length,
    )  # fmt: skip


def init_model(
    tokenizer, *, hidden: int = 128, layers: int = 4, heads: int = 4, max_positions: int = 512, seed: int = 0
):  # -> LlamaForCausalLM
    """A Llama-style decoder with random weights. Rotary positions matter here: a value memorized at one offset
    of a packed block is recalled at any offset, short prompts included."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def blocks(tokenizer, texts: list[str], block: int) -> list[list[int]]:
    """The corpus as one token stream (each file followed by EOS), cut into full blocks."""
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]:
        ids.extend([*enc, tokenizer.eos_token_id])
    return [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]


def _collate(batch: list[list[int]]) -> dict[str, Any]:
    import torch

    ids = torch.tensor(batch, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def build(out: str | Path, cfg: BaseConfig, *, overwrite: bool = False, log=print) -> dict[str, Any]:
    """Pretrain a base into `out` (resuming from `out`'s checkpoint folder when a build was interrupted);
    returns its record."""
    out = check_output(out, kind="directory")
    if (out / RECORD).is_file() and not overwrite:
        try:
            record = BaseModelRecord.read(out).dump()
        except LeakBenchError:
            record = {}  # a damaged record: replaced only with --overwrite
        if record.get("config_key") == cfg.key():
            log(f"reusing the base in {out} (built with the same arguments)")
            return record
        raise LeakBenchError(f"{out} holds a base built with other arguments; pass --overwrite to replace it")
    if out.is_dir() and any(out.iterdir()) and not overwrite:  # refused before hours of training, not after
        raise LeakBenchError(f"{out}: directory exists and is not empty (pass --overwrite to replace it)")
    import torch  # only now: a refused --out costs no torch import
    from transformers import Trainer

    work = out.parent / f".{out.name}.pretraining-{cfg.key()}"  # checkpoints: kept until the build completes
    work.mkdir(parents=True, exist_ok=True)
    corpus = pretraining_corpus(cfg.corpus_chars, cfg.seed)
    texts = [row["text"] for row in corpus]
    if (work / "tokenizer" / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    else:
        tokenizer = train_tokenizer(texts, cfg.vocab_size, cfg.block)
        tokenizer.save_pretrained(work / "tokenizer")
    data = blocks(tokenizer, texts, cfg.block)
    if not data:
        raise LeakBenchError(f"the corpus ({sum(map(len, texts))} characters) is shorter than one block")
    model = init_model(tokenizer, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                       max_positions=cfg.block, seed=cfg.seed)  # fmt: skip
    parameters = sum(p.numel() for p in model.parameters())
    log(f"pretraining {parameters / 1e6:.2f}M parameters for {cfg.steps} steps ({cfg.tokens / 1e6:.1f}M tokens) "
        f"on {len(corpus)} files, {len(data) * cfg.block / 1e6:.2f}M tokens per pass")  # fmt: skip
    args = training_arguments(
        str(work / "checkpoints"), steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
        lr_scheduler_type="cosine", warmup_steps=cfg.warmup_steps, adam_beta2=0.98, weight_decay=0.1,
        logging_steps=max(1, cfg.steps // 50), save_strategy="steps", save_steps=max(1, cfg.steps // 20),
        save_total_limit=1,
    )  # fmt: skip
    torch.manual_seed(cfg.seed)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=_collate)
    checkpoints = sorted((work / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if checkpoints:
        log(f"resuming from {checkpoints[-1].name}")
    wall_file = work / "wall_time_s"
    earlier = float(wall_file.read_text()) if wall_file.is_file() else 0.0
    started = time.perf_counter()
    try:
        train(trainer, resume_from_checkpoint=str(checkpoints[-1]) if checkpoints else None)
    finally:  # the time spent counts even when the build is interrupted and resumed later
        write_text_atomic(wall_file, f"{earlier + time.perf_counter() - started:.1f}")
    wall = float(wall_file.read_text())
    losses = [{"step": e["step"], "loss": round(e["loss"], 4)} for e in trainer.state.log_history if "loss" in e]
    with atomic_dir(out, overwrite=True) as tmp:
        save_model(model, tokenizer, tmp)
        typed = BaseModelRecord(**provenance(
            kind="base", config=asdict(cfg), config_key=cfg.key(), parameters=parameters,
            architecture={"family": "llama", "hidden": cfg.hidden, "layers": cfg.layers, "heads": cfg.heads,
                          "context": cfg.block, "vocab_size": len(tokenizer)},
            tokenizer={"kind": "byte-level BPE", "trained_on": "the corpus", "vocab_size": len(tokenizer)},
            corpus={"source": "CPython standard library, tests and held-out modules excluded, scrubbed",
                    "python": sys.version.split()[0], "held_out": list(HELD_OUT),
                    "characters": sum(map(len, texts)), "tokens_per_pass": len(data) * cfg.block,
                    "files": [{"path": r["path"], "sha256": r["sha256"]} for r in corpus]},
            tokens_seen=cfg.steps * cfg.batch_size * cfg.block, steps=cfg.steps, loss_curve=losses,
            wall_time_s=round(wall, 1), weights_sha256=sha256_file(tmp / "model.safetensors"),
        ))  # fmt: skip
        typed.write(tmp)
        record = typed.dump()
    shutil.rmtree(work, ignore_errors=True)
    log(f"base saved to {out} ({wall:.0f}s of training)")
    return record


def embedded() -> Path:
    """The shipped base's folder, after checking its weights are the ones released."""
    weights = EMBEDDED / "model.safetensors"
    if not weights.is_file():
        raise LeakBenchError(f"{EMBEDDED}: the embedded base is missing; reinstall leakbench")
    if EMBEDDED_SHA256 and sha256_file(weights) != EMBEDDED_SHA256:
        raise LeakBenchError(f"{weights}: not the released weights (sha256 differs); reinstall leakbench")
    return EMBEDDED
