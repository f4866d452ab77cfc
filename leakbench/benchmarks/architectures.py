"""The model families users bring, as tiny local models, and the GPU check that runs them on CUDA.

    python -m leakbench.benchmarks.architectures [--hidden 512 --layers 8] [--steps 20] [--json OUT.json]

`tiny_tokenizer` / `tiny_model` build a randomly initialised model of each family with a tokenizer trained here
in that family's conventions (used by `tests/test_architectures.py` on CPU). The GPU check builds each family on
CUDA in bf16 (`precision="bf16"`: autocast) and times, per optimizer step, victim fine-tuning in full and with
LoRA and the unlearning methods of `GPU_METHODS` (GA+KL, NPO, RMU and PLUM: a reference model on the GPU, frozen
layers, on-policy sampling), each in full and under LoRA; it prints seconds per step and peak GPU memory.
It needs a CUDA device and refuses to run without one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from leakbench.data import read_table
from leakbench.records import LeakBenchError, provenance, write_text_atomic
from leakbench.unlearn import UnlearnConfig, unlearn
from leakbench.victim import VictimConfig, build

FAMILIES = ("llama", "gpt2", "gpt_bigcode", "qwen2", "mistral")
GPU_METHODS = ("ga_kl", "npo", "rmu", "plum")  # the methods issue's GPU list: reference model, RMU, preference
POSITIONS = {"gpt2": 128}  # GPT-2's short position limit (the real one is 1024): prompts must be cut to fit


def tiny_tokenizer(family: str, positions: int):
    """A byte-level BPE trained here, wrapped the way the family's hub tokenizer behaves."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    llama_like = family in ("llama", "mistral")
    specials = ["<unk>", "<s>", "</s>"] if llama_like else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = ByteLevelBPETokenizer()
    texts = [d["text"] for d in read_table("retain", subset="mini")]
    bpe.train_from_iterator(texts, vocab_size=400, min_frequency=2, special_tokens=specials, show_progress=False)
    raw = bpe._tokenizer
    if llama_like:  # a BOS token before every sequence, no pad token (CodeLlama, Mistral)
        raw.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", raw.token_to_id("<s>"))]
        )
        conventions = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "padding_side": "left"}
    elif family == "qwen2":  # no BOS; pad is the end-of-text token; right padding
        conventions = {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "padding_side": "right"}
    else:  # GPT-2, StarCoder: BOS = EOS = <|endoftext|>, no pad token
        conventions = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    return PreTrainedTokenizerFast(tokenizer_object=raw, model_max_length=positions, **conventions)


def tiny_model(family: str, tokenizer, positions: int, *, hidden: int = 32, layers: int = 1, heads: int = 2):
    import torch
    from transformers import (
        AutoModelForCausalLM,
        GPT2Config,
        GPTBigCodeConfig,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
    )

    torch.manual_seed(0)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id, "vocab_size": len(tokenizer)}  # fmt: skip
    small = {"hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
             "num_attention_heads": heads, "max_position_embeddings": positions}  # fmt: skip
    config = {
        "llama": lambda: LlamaConfig(**small, **ids),
        "mistral": lambda: MistralConfig(**small, num_key_value_heads=1, sliding_window=64, **ids),
        "qwen2": lambda: Qwen2Config(**small, num_key_value_heads=1, **ids),
        "gpt2": lambda: GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=positions, **ids),
        "gpt_bigcode": lambda: GPTBigCodeConfig(
            n_embd=hidden, n_layer=layers, n_head=heads, n_positions=positions, multi_query=True, **ids
        ),
    }[family]()
    return AutoModelForCausalLM.from_config(config)


def build_family(family: str, out: Path, **size: int) -> Path:
    """Save a tiny model of `family` and its tokenizer to `out`; returns `out`."""
    positions = POSITIONS.get(family, 256)
    tokenizer = tiny_tokenizer(family, positions)
    tiny_model(family, tokenizer, positions, **size).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _per_step(fn) -> dict[str, float]:
    """Run `fn` (a build or unlearning that returns its record, with `steps`) and time it per optimizer step,
    with the peak GPU memory it reached."""
    import torch

    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    started = time.perf_counter()
    record = fn()
    torch.cuda.synchronize()
    wall = time.perf_counter() - started
    return {"steps": record["steps"], "s_per_step": round(wall / max(1, record["steps"]), 4),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)}  # fmt: skip


def gpu_check(steps: int, hidden: int, layers: int, heads: int) -> dict:
    import torch


    if not torch.cuda.is_available():
        raise LeakBenchError("the GPU check needs a CUDA device; none is visible (torch.cuda.is_available() is False)")
    figures: dict = {"device": torch.cuda.get_device_name(0), "size": {"hidden": hidden, "layers": layers},
                     "families": {}}  # fmt: skip
    quiet = {"log": lambda message: None}
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            root = Path(tmp) / family
            base = build_family(family, root / "base", hidden=hidden, layers=layers, heads=heads)
            row: dict = {}
            for lora in (False, True):
                kind = "lora" if lora else "full"
                victim_cfg = VictimConfig(base=str(base), epochs=1, batch_size=8, lora=lora, precision="bf16")
                row[f"victim_{kind}"] = _per_step(
                    lambda c=victim_cfg, k=kind, r=root: build(r / f"victim-{k}", c, **quiet)
                )
                for method in GPU_METHODS:
                    ucfg = UnlearnConfig(method=method, steps=steps, batch_size=8, lora=lora, precision="bf16")
                    row[f"{method}_{kind}"] = _per_step(
                        lambda c=ucfg, k=kind, r=root, m=method: unlearn(r / f"victim-{k}", r / f"{m}-{k}", c, **quiet)
                    )
            figures["families"][family] = row
            print(family, json.dumps(row), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="unlearning steps per measurement")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--json", help="also write the figures (with provenance) to this file")
    args = parser.parse_args()
    try:
        figures = gpu_check(args.steps, args.hidden, args.layers, args.heads)
    except LeakBenchError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(benchmark="gpu_check", figures=figures), indent=2) + "\n")


if __name__ == "__main__":
    main()
