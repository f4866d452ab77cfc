"""SimNPO (Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM
Unlearning"): NPO without a reference model, on the length-normalized log-likelihood, with a margin.

loss = -(2/beta) * mean log sigmoid(-(beta/|y|) * log p_cur(y) - margin)  [+ w * retain NLL]
Length normalization stops long documents from dominating; no reference model halves the forward passes.
"""

import torch.nn.functional as F

from leakbench.unlearn.trainer import UnlearningTrainer, sequence_logprob


def simnpo_loss(logp, lengths, beta: float, margin: float):
    return -(2.0 / beta) * F.logsigmoid(-beta * logp / lengths.clamp(min=1) - margin).mean()


class SimNPOTrainer(UnlearningTrainer):
    method = "simnpo"

    def forget_loss(self, model, inputs):
        logp, lengths = sequence_logprob(model, inputs["forget"])
        return simnpo_loss(logp, lengths, self.hyper["beta"], self.hyper["margin"])

    def retain_loss(self, model, inputs):
        return self.retain_nll(model, inputs)
