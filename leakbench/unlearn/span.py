"""Span-aware unlearning, in CodeEraser's manner (ICSE 2026: "unlearning only the sensitive spans keeps code
ability"): an unlearning loss on the sensitive-value tokens only, language modelling on the non-sensitive
context of the same documents, and KL to the original model on retain documents.

loss = U(values) + c * NLL(context) + w * KL(p_ref || p_cur on retain)
U is NPO on the values' log-ratio (`forget_loss=npo`, the default) or gradient ascent (`forget_loss=ga`).
"""

from leakbench.corpus import IGNORE
from leakbench.unlearn.trainer import UnlearningTrainer, npo_loss, sequence_logprob


def split_labels(forget):
    """The forget batch twice: labels on the value tokens only, and on the context tokens only."""
    values = forget["value_mask"]
    return ({**forget, "labels": forget["labels"].masked_fill(~values, IGNORE)},
            {**forget, "labels": forget["labels"].masked_fill(values, IGNORE)})  # fmt: skip


class SpanTrainer(UnlearningTrainer):
    method = "span"
    needs_reference = True

    def unlearning_loss(self, model, inputs):
        values, context = split_labels(inputs["forget"])
        if self.hyper["forget_loss"] == "ga":
            forget = -self.nll(model, values)
        else:
            logp, _ = sequence_logprob(model, values)
            ref_logp, _ = self.reference(lambda m: sequence_logprob(m, values))
            forget = npo_loss(logp - ref_logp, self.hyper["beta"])
        return forget + self.hyper["context_weight"] * self.nll(model, context) + self.retain_kl(model, inputs)
