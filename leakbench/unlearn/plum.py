"""Scorer-verified on-policy preference learning: the PLUM recipe (Zhang et al. 2024, arXiv 2406.06887)
applied to leakage, where LeakBench's own scorer plays the part of PLUM's test cases.

Each of `rounds` rounds samples `samples` completions of `prompts` forget prefixes from the current model,
labels them with the leak scorer (any direct or indirect leak -> rejected) and a validity check (the completed
line keeps the document parseable: Python `compile`, JSON, YAML), pairs a clean valid sample (or, when no
sample is clean, the redaction) against a leaking one, and trains DPO on those pairs against the original
model (`leakbench.unlearn.pairs`). The loss is redaction DPO's; only the pairs differ.

With `fallback=decoy`, where no sample is clean the chosen side is the value rewritten by the generator that made
it (a same-type decoy that belongs to nobody) instead of the redaction, so the pair teaches the model to write
*some* value there, as a model that never saw the subject would, and the memorized value loses likelihood to
plausible others rather than to a placeholder the documents never hold at that place.
"""

from leakbench.data import read_table
from leakbench.unlearn.dpo import DPOTrainer
from leakbench.unlearn.trainer import ForgetSource


class PLUMTrainer(DPOTrainer):
    method = "plum"

    @classmethod
    def forget_items(cls, source: ForgetSource, round: int):
        """This round's on-policy pairs (their counts recorded as `on_policy_rounds`); None once nothing leaks."""
        from leakbench.unlearn.pairs import on_policy_pairs

        h, name = source.hyper, source.method
        fallback = h["fallback"]  # where no sample is clean: the redaction, or a decoy
        items, counts = on_policy_pairs(source.model, source.tokenizer, source.documents,
                                        read_table("subjects", subset=source.subset, data_dir=source.data_dir,
                                                   split=source.split),
                                        prompts=h["prompts"], samples=h["samples"], seed=source.seed + round,
                                        max_prompt=source.max_prompt, fallback=fallback)  # fmt: skip
        source.record.setdefault("on_policy_rounds", []).append(counts)
        source.log(f"{name} round {round + 1}/{h['rounds']}: {counts['leaking']}/{counts['samples']} samples leak, "
                   f"{counts['pairs']} pairs ({counts['fallback_chosen']} with the {fallback} chosen)")  # fmt: skip
        if not items:
            source.log(f"{name}: no sample leaks any more; stopping after {round} round(s)")
            return None
        return items
