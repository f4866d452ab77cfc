"""Redaction DPO (Rafailov et al. 2023, "Direct Preference Optimization"), for leakage: at every occurrence
of a sensitive value, the document prefix continued with the non-sensitive form the retain templates use
(an environment lookup such as `${DB_PASSWORD}`) is preferred to the memorized value.

loss = -mean log sigmoid(beta * ((log p_cur - log p_ref)(chosen) - (log p_cur - log p_ref)(rejected)))
       [+ w * retain NLL]
"""

from leakbench.unlearn.trainer import ForgetSource, UnlearningTrainer, dpo_loss, sequence_logprob


def preference_loss(trainer: UnlearningTrainer, model, inputs):
    forget = inputs["forget"]
    ratios = []
    for side in ("chosen", "rejected"):
        logp, _ = sequence_logprob(model, forget[side])
        ref_logp, _ = trainer.reference(lambda m, s=side: sequence_logprob(m, forget[s]))
        ratios.append(logp - ref_logp)
    return dpo_loss(*ratios, trainer.hyper["beta"]) + trainer.retain_nll(model, inputs)


class DPOTrainer(UnlearningTrainer):
    method = "dpo"
    needs_reference = True

    @classmethod
    def forget_items(cls, source: ForgetSource, round: int):
        from leakbench.unlearn.pairs import redaction_pairs

        return redaction_pairs(source.tokenizer, source.documents, source.max_prompt)

    def unlearning_loss(self, model, inputs):
        return preference_loss(self, model, inputs)
