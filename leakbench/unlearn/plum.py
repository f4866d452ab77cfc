"""Scorer-verified on-policy preference learning: the PLUM recipe (Zhang et al. 2024, arXiv 2406.06887)
applied to leakage, where LeakBench's own scorer plays the part of PLUM's test cases.

Each of `rounds` rounds samples `samples` completions of `prompts` forget prefixes from the current model,
labels them with the leak scorer (any direct or indirect leak -> rejected) and a validity check (the completed
line keeps the document parseable: Python `compile`, JSON, YAML), pairs a clean valid sample (or, when no
sample is clean, the redaction) against a leaking one, and trains DPO on those pairs against the original
model (`leakbench.unlearn.pairs`). The loss is redaction DPO's; only the pairs differ.
"""

from leakbench.unlearn.dpo import DPOTrainer


class PLUMTrainer(DPOTrainer):
    method = "plum"
    forget_items = "on_policy_pairs"
