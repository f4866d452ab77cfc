"""Unlearning baselines on one shared HF Trainer: GA, GA+GD, GA+KL (the study's) and NPO.

`unlearn()` loads a victim, runs one method on its forget set with retain documents as the counterweight,
and writes the model plus `unlearn.json` atomically.
"""

from __future__ import annotations

import copy
import importlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leakbench.records import (
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    dumps_record,
    model_record,
    provenance,
)

# The registry: method name -> its trainer class in leakbench/unlearn/<name>.py. Reading it imports no torch.
METHODS: dict[str, str] = {"ga": "GATrainer", "ga_gd": "GAGDTrainer", "ga_kl": "GAKLTrainer", "npo": "NPOTrainer"}
RECORD = "unlearn.json"


def check_methods(names: tuple[str, ...] | list[str]) -> None:
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        names_ = ", ".join(map(repr, unknown))
        raise UsageError(f"unknown unlearning method(s) {names_}; choose from: {', '.join(METHODS)}")
    if not names:
        raise UsageError(f"no unlearning method given; choose from: {', '.join(METHODS)}")


def method(name: str) -> tuple[type, dict[str, Any]]:
    """A method's trainer class and its default hyper-parameters (imports torch)."""
    check_methods([name])
    module = importlib.import_module(f"leakbench.unlearn.{name}")
    return getattr(module, METHODS[name]), module.DEFAULTS


@dataclass
class UnlearnConfig:
    method: str
    steps: int | None = None  # None: the method's default
    lr: float | None = None
    retain_weight: float | None = None
    beta: float | None = None  # NPO's inverse temperature; None: the method's default
    batch_size: int = 8
    values_only: bool = False  # restrict the forget loss to the tokens of the sensitive values
    lora: bool = False
    lora_rank: int = 8
    max_length: int = 512
    seed: int = 0
    subset: str | None = None  # None: the subset the victim memorized
    precision: str = "fp32"  # or "bf16" (autocast, on a GPU that has it): part of the cache key and the record
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Every option is checked here, before a model is loaded."""
        from leakbench.data import check_subset

        check_methods([self.method])
        check_number("--steps", self.steps, integer=True)
        check_number("--lr", self.lr)
        check_number("--retain-weight", self.retain_weight, allow_zero=True)
        check_number("--beta", self.beta)
        check_number("--batch-size", self.batch_size, integer=True)
        check_number("--lora-rank", self.lora_rank, integer=True)
        check_number("--max-length", self.max_length, integer=True)
        check_number("--seed", self.seed, integer=True, allow_zero=True)
        if self.subset is not None:
            check_subset(self.subset)
        if self.precision != "fp32":
            from leakbench.corpus import check_precision

            check_precision(self.precision)

    def resolved(self) -> UnlearnConfig:
        defaults = method(self.method)[1]
        out = copy.copy(self)
        out.steps = self.steps if self.steps is not None else defaults["steps"]
        out.lr = self.lr if self.lr is not None else defaults["lr"]
        out.retain_weight = self.retain_weight if self.retain_weight is not None else defaults["retain_weight"]
        out.beta = self.beta if self.beta is not None else defaults.get("beta")
        return out


def load_causal_lm(model_dir: str | Path):
    """Model and tokenizer from a local directory (or a hub id where the network allows), with clear errors."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise LeakBenchError(f"{model_dir}: not a Hugging Face model directory ({exc.__class__.__name__})") from None
    archs = config.architectures or []
    if archs and not any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in archs):
        raise LeakBenchError(f"{model_dir}: not a causal language model (architectures: {', '.join(archs)})")
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise LeakBenchError(f"{model_dir}: cannot load as a causal language model ({exc})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def context_length(model, default: int) -> int:
    """How many positions the model can attend to (GPT-2 calls it n_positions; both answer to this name)."""
    return int(getattr(model.config, "max_position_embeddings", None) or default)


def check_release(record: dict[str, Any], release_hash: str, model_dir: str | Path) -> None:
    recorded = record.get("data_release_hash")
    if recorded and recorded != release_hash:
        raise LeakBenchError(
            f"{model_dir} was trained on data release {recorded[:12]}…, but the forget set given has hash "
            f"{release_hash[:12]}…: pass the matching --data-dir"
        )


def unlearn(
    model_dir: str | Path,
    out: str | Path,
    config: UnlearnConfig,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    log=print,
) -> dict[str, Any]:
    """Run one unlearning method; returns the record written to OUT/unlearn.json."""
    from leakbench.corpus import encode_documents, quiet_progress, retain_training_documents, training_arguments
    from leakbench.data import read_table, release_hash
    from leakbench.unlearn.trainer import PairCollator, PairedDataset

    cfg = config.resolved()
    check_not_aliased("--out", out, {"--model": model_dir, "--data-dir": data_dir})
    record = model_record(model_dir)
    data_hash = release_hash(data_dir=data_dir) if data_dir else release_hash()
    check_release(record, data_hash, model_dir)
    subset = cfg.subset or record.get("subset", "mini")
    model, tokenizer = load_causal_lm(model_dir)
    forget_docs = read_table("forget", subset=subset, data_dir=data_dir)
    retain_docs = retain_training_documents(subset, data_dir)
    max_length = min(cfg.max_length, context_length(model, cfg.max_length))  # GPT-2-style short limits
    forget = encode_documents(tokenizer, forget_docs, max_length=max_length)
    retain = encode_documents(tokenizer, retain_docs, max_length=max_length)

    trainer_cls = method(cfg.method)[0]
    ref_model = None
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=cfg.lora_rank,
                lora_alpha=2 * cfg.lora_rank,
                target_modules="all-linear",
                lora_dropout=0.0,
            ),
        )
    elif trainer_cls.needs_reference:
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)

    collator = PairCollator(tokenizer.pad_token_id, cfg.values_only)
    before = forget_retain_loss(model, forget, retain, collator)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        args = training_arguments(
            str(tmp / "_trainer"),
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            precision=cfg.precision,
            lr_scheduler_type="constant",
            warmup_steps=0,
        )
        dataset = PairedDataset(forget, retain, cfg.steps * cfg.batch_size, cfg.seed)
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=collator,
            ref_model=ref_model,
            retain_weight=cfg.retain_weight,
            beta=cfg.beta,
        )
        started = time.perf_counter()
        quiet_progress(trainer)
        trainer.train()
        wall = time.perf_counter() - started
        if cfg.lora:
            model = model.merge_and_unload()
        after = forget_retain_loss(model, forget, retain, collator)
        import shutil

        shutil.rmtree(tmp / "_trainer", ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        result = provenance(
            kind="unlearn",
            method=cfg.method,
            hyperparameters={k: v for k, v in asdict(cfg).items() if k not in ("method", "extra")},
            steps=cfg.steps,
            wall_time_s=round(wall, 2),
            seed=cfg.seed,
            subset=subset,
            data_release_hash=data_hash,
            source_model=str(Path(model_dir).resolve()) if Path(model_dir).exists() else str(model_dir),
            victim=record.get("victim", record),
            early_stopping=None,  # none: every run takes its full step budget
            loss_before={"forget": before[0], "retain": before[1]},
            loss_after={"forget": after[0], "retain": after[1]},
        )
        (tmp / RECORD).write_text(dumps_record(result))
    log(
        f"{cfg.method}: forget loss {before[0]:.3f} -> {after[0]:.3f}, retain loss {before[1]:.3f} -> {after[1]:.3f}"
        f" ({wall:.1f}s)"
    )
    return result


def forget_retain_loss(model, forget, retain, collator, batch_size: int = 16) -> tuple[float, float]:
    """Mean token NLL over all forget and all retain examples (the forget loss counts only the tokens the
    method trains on: all tokens, or the sensitive values with values_only)."""
    import torch

    from leakbench.unlearn.trainer import token_logprobs

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals = []
    with torch.no_grad():
        for prefix, items in (("forget", forget), ("retain", retain)):
            nll_sum, count = 0.0, 0
            for i in range(0, len(items), batch_size):
                chunk = items[i : i + batch_size]
                batch = collator(list(zip(chunk, chunk, strict=True)))
                args = [batch[f"{prefix}_{k}"].to(device) for k in ("input_ids", "attention_mask", "labels")]
                picked, mask, _ = token_logprobs(model, *args)
                nll_sum += float(-picked.sum())
                count += int(mask.sum())
            totals.append(nll_sum / max(count, 1))
    model.train(was_training)
    return totals[0], totals[1]
