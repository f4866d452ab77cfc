"""Preference pairs for leakage: redaction pairs (the value vs. the non-sensitive form the retain templates use)
and on-policy pairs (the model's own samples, labelled by the LeakBench scorer and a parser), the PLUM recipe.

Every pair's prompt is a forget document up to a value occurrence, cut at a token boundary of the document's
own tokenization (so the rejected completion is exactly the tokens the victim memorized).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from leakbench.data.decoys import decoys
from leakbench.data.templates import RETAIN_VALUES
from leakbench.scoring import LeakScorer, ScoreInput
from leakbench.unlearn.trainer import Pair

PROMPT_TOKENS = 192  # prompt budget (the probes' prefixes are shorter than this)


def redaction(field: str) -> str:
    """The non-sensitive form of a field the retain documents use: its `${VARIABLE}` lookup, else a placeholder."""
    forms = RETAIN_VALUES[field]
    return next((f for f in forms if f.startswith("${")), forms[0])


@dataclass
class Site:
    """One value occurrence: its document, field, subject, and the prompt/value token split."""

    doc: dict[str, Any]
    occurrence: dict[str, Any]
    prompt: list[int]
    head: str  # the text of a token that straddles the value's start (it belongs to the completion)
    value: list[int]

    @property
    def prompt_text(self) -> str:
        """The document text the prompt tokens cover (up to the value, less a straddling token's head)."""
        return self.doc["text"][: self.occurrence["start"] - len(self.head)]


def sites(tokenizer, docs: Sequence[dict[str, Any]], max_prompt: int = PROMPT_TOKENS) -> list[Site]:
    """Every value occurrence of `docs`, split where the document's tokenization crosses the value's start; the
    prompt keeps its last `max_prompt` tokens."""
    out = []
    for doc in docs:
        for occ in doc.get("occurrences", ()):
            text = doc["text"][: occ["end"]]
            enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, verbose=False)
            offsets = enc["offset_mapping"]
            cut = next((i for i, (_, end) in enumerate(offsets) if end > occ["start"]), len(offsets))
            head = doc["text"][offsets[cut][0] : occ["start"]] if cut < len(offsets) else ""
            ids = enc["input_ids"]
            out.append(Site(doc, occ, ids[max(0, cut - max_prompt) : cut], head, ids[cut:]))
    return out


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def redaction_pairs(tokenizer, docs: Sequence[dict[str, Any]], max_prompt: int = PROMPT_TOKENS) -> list[Pair]:
    """One pair per value occurrence: chosen = the redacted form, rejected = the memorized value."""
    return [Pair(s.prompt, encode(tokenizer, s.head + redaction(s.occurrence["field"])), s.value)
            for s in sites(tokenizer, docs, max_prompt) if s.value]  # fmt: skip


def parses(language: str, text: str) -> bool:
    """Whether a document still parses (where a parser exists here: Python, JSON, YAML); other languages pass."""
    try:
        if language == "python":
            compile(text, "<document>", "exec")
        elif language == "json":
            json.loads(text)
        elif language == "yaml":
            import yaml

            yaml.safe_load(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    except Exception as exc:  # yaml's errors share no base class with the others
        if type(exc).__module__.startswith("yaml"):
            return False
        raise
    return True


def completed_document(site: Site, line: str) -> str:
    """The document with the value's line completed by `line` (a sample after the prompt, up to its newline)."""
    text = site.doc["text"]
    end_of_line = text.find("\n", site.occurrence["end"])
    return site.prompt_text + line + (text[end_of_line:] if end_of_line >= 0 else "")


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def complete(
    model, tokenizer, prompts: Sequence[Site], samples: int, seed: int, batch_size: int = 32
) -> list[list[str]]:
    """`samples` completions of each site's prompt from the current model: the greedy one (what the direct probes
    decode) and samples-1 draws at temperature 1."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id
    generations: list[list[str]] = []
    torch.manual_seed(seed)
    with torch.no_grad():
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i : i + batch_size]
            width = max(len(s.prompt) for s in chunk)  # left padding: generation continues each prompt
            ids = torch.tensor([[pad] * (width - len(s.prompt)) + s.prompt for s in chunk], device=device)
            attention = torch.tensor([[0] * (width - len(s.prompt)) + [1] * len(s.prompt) for s in chunk],
                                     device=device)  # fmt: skip
            common = {"input_ids": ids, "attention_mask": attention, "pad_token_id": pad,
                      "max_new_tokens": max(len(s.value) for s in chunk) + 8}  # fmt: skip
            drawn = [model.generate(**common, do_sample=False)]
            if samples > 1:
                drawn.append(model.generate(**common, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                                            num_return_sequences=samples - 1))  # fmt: skip
            texts = [tokenizer.batch_decode(out[:, width:], skip_special_tokens=True) for out in drawn]
            k = samples - 1
            generations.extend([texts[0][j], *(texts[1][j * k : (j + 1) * k] if k else [])] for j in range(len(chunk)))
    model.train(was_training)
    return generations


def on_policy_pairs(
    model,
    tokenizer,
    docs: Sequence[dict[str, Any]],
    subjects: Sequence[dict[str, Any]],
    *,
    prompts: int,
    samples: int,
    seed: int,
    max_prompt: int = PROMPT_TOKENS,
    fallback: str = "redaction",
) -> tuple[list[Pair], dict[str, Any]]:
    """PLUM's step on leakage: `samples` completions (`complete`) of `prompts` forget prefixes, each labelled
    with the scorer (any direct or indirect leak of the subject) and the parser; a clean, valid sample is paired
    against a leaking one. Where no sample is clean, the chosen side is the `fallback`: the redaction, or a decoy
    (the value rewritten by the generator that made it: same type and shape, nobody's; what a model that never
    saw the subject would write there). Prefixes where no sample leaks give no pair. Returns the pairs and the
    counts behind them (and the fallback they name)."""

    by_id = {s["subject_id"]: s for s in subjects}
    scorer = LeakScorer(subjects, analyze=False)  # the taxonomy only: Presidio's other-PII is not needed here
    pool = [s for s in sites(tokenizer, docs, max_prompt) if s.value]
    chosen_sites = random.Random(seed).sample(pool, min(prompts, len(pool)))
    generations = complete(model, tokenizer, chosen_sites, samples, seed)
    lines = [[first_line(g) for g in gens] for gens in generations]  # each sample completes the value's line
    items = [ScoreInput(s.prompt_text, line, s.occurrence["field"], by_id[s.occurrence["subject_id"]])
             for s, group in zip(chosen_sites, lines, strict=True) for line in group]  # fmt: skip
    verdicts = scorer.score_batch(items)
    pairs, counts = [], {"prompts": len(chosen_sites), "samples": len(items), "leaking": 0, "clean_valid": 0,
                         "pairs": 0, "fallback": fallback, "fallback_chosen": 0}  # fmt: skip
    rng = random.Random(seed)  # the decoys' draws
    for j, site in enumerate(chosen_sites):
        clean = leaking = None
        for line, verdict in zip(lines[j], verdicts[j * samples : (j + 1) * samples], strict=True):
            leaks = getattr(verdict, "leak", "none") != "none"
            valid = not leaks and parses(site.doc["language"], completed_document(site, line))
            counts["leaking"] += leaks
            counts["clean_valid"] += valid
            if leaks and leaking is None:
                leaking = encode(tokenizer, line)
            elif valid and clean is None:
                clean = encode(tokenizer, line)
        if leaking is None:
            continue
        if clean is None:
            field = site.occurrence["field"]
            stand_in = (decoys(field, by_id[site.occurrence["subject_id"]], rng, 1)[0] if fallback == "decoy"
                        else redaction(field))  # fmt: skip
            clean = encode(tokenizer, site.head + stand_in)
            counts["fallback_chosen"] += 1
        pairs.append(Pair(site.prompt, clean, leaking))
    counts["pairs"] = len(pairs)
    return pairs, counts
