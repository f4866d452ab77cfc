"""One training module for base pretraining, victim/oracle fine-tuning and every unlearning method: loading a
causal LM, LoRA wrapping, the shared `TrainingArguments`, and the train -> merge -> save sequence.

Everything here runs on the Hugging Face `Trainer`, so `accelerate launch` distributes it (DDP, FSDP,
DeepSpeed) without code of ours; `world()` records what the run was distributed over.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from leakbench.records import LeakBenchError, UsageError, os_error_message

PRECISIONS = ("fp32", "bf16")
LORA_RANK = 8  # one default for victims and unlearning; alpha = 2 x rank (the peft/QLoRA convention)


def check_precision(precision: str) -> None:
    """fp32 everywhere (the default: results do not depend on the device), or bf16 autocast on a GPU that has it."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "bf16":
        import torch

        if not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
            raise UsageError("bf16 needs a CUDA GPU that supports it; use fp32 here")


def choose_device(device: str | None = None) -> str:
    """The torch device of every verb that places a model itself (privacy, utility, robustness, the lm-eval
    harness): the one given, checked, or cuda when present, else the cpu. An unknown or absent device is a usage
    error."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device is available here")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: no MPS device is available here")
    return device


def check_readable(model_dir: str | Path) -> None:
    """Every file of a local model directory can be opened: transformers reports an unreadable weights file as
    missing ("No such file or directory"), which sends the user looking for the wrong problem."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return  # a hub id, or nothing: transformers says which
    for path in sorted(folder.iterdir()):
        if path.is_file():
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise LeakBenchError(f"cannot read the model: {os_error_message(exc, path)}") from None


def check_model_dir(model_dir: str | Path) -> None:
    """Refuse a local path that holds no model before transformers is imported (seconds a bad argument should not
    cost). A name that is not a local path is left to transformers, as a hub id."""
    name, path = str(model_dir), Path(model_dir)
    exists = path.exists()
    local = exists or path.is_absolute() or name.startswith(".") or name.count("/") > 1
    if local and not (path / "config.json").is_file():
        what = "no such directory" if not exists else "no config.json" if path.is_dir() else "a file"
        raise LeakBenchError(f"{model_dir}: not a Hugging Face model directory ({what})")


def load_causal_lm(model_dir: str | Path):
    """Model and tokenizer from a local directory (or a hub id where the network allows), with clear errors."""
    check_model_dir(model_dir)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    check_readable(model_dir)
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


def with_lora(model, rank: int = LORA_RANK):
    """The model wrapped with LoRA adapters on every linear layer (peft); `merged` folds them back in."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type="CAUSAL_LM", r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                        lora_dropout=0.0)  # fmt: skip
    return get_peft_model(model, config)


def merged(model):
    """A plain model again: LoRA adapters merged into the weights (a no-op for a model without them)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def training_arguments(
    output_dir: str, *, steps: int, batch_size: int, lr: float, seed: int, precision: str = "fp32", **overrides: Any
):
    """`TrainingArguments` shared by every training run here: a fixed step budget, no checkpoints or reporting,
    our own batch keys kept, seeded, and the CPU when there is no GPU. `batch_size` is per process."""
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
        "use_cpu": choose_device(None) == "cpu",
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


def train(trainer, **train_kwargs: Any) -> float:
    """Run the trainer with a progress bar only; returns the wall time in seconds."""
    quiet_progress(trainer)
    started = time.perf_counter()
    trainer.train(**train_kwargs)
    return time.perf_counter() - started


def save_model(model, tokenizer, out: Path, scratch: Path | None = None):
    """Weights (LoRA merged) and tokenizer into `out`, the trainer's scratch folder removed first; returns the
    saved (merged) model."""
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    model = merged(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model


def world(trainer) -> dict[str, Any]:
    """What a run was distributed over: recorded because results can change with the process count."""
    args = trainer.args
    return {
        "world_size": args.world_size,
        "per_device_batch": args.per_device_train_batch_size,
        "global_batch": args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "device": str(args.device),
        "distributed": str(trainer.accelerator.distributed_type).split(".")[-1].lower(),
    }
