"""NPO (Zhang et al. 2024, "Negative Preference Optimization"): a bounded alternative to gradient ascent.

loss = -(2/beta) * mean log sigmoid(-beta * (log p_cur(forget) - log p_ref(forget)))  [+ w * retain NLL]
With a retain weight this is NPO+RT; `--retain-weight 0` gives plain NPO.
"""

from leakbench.unlearn.trainer import UnlearningTrainer, npo_loss, sequence_logprob


class NPOTrainer(UnlearningTrainer):
    method = "npo"
    needs_reference = True

    def forget_loss(self, model, inputs):
        forget = inputs["forget"]
        logp, _ = sequence_logprob(model, forget)
        ref_logp, _ = self.reference(lambda m: sequence_logprob(m, forget))
        return npo_loss(logp - ref_logp, self.hyper["beta"])

    def retain_loss(self, model, inputs):
        return self.retain_nll(model, inputs)
