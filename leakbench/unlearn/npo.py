"""NPO (Zhang et al. 2024, "Negative Preference Optimization"): a bounded alternative to gradient ascent.

loss = -(2/beta) * mean log sigmoid(-beta * (log p_cur(forget) - log p_ref(forget)))  [+ retain NLL]
With the default retain weight this is NPO+RT; --retain-weight 0 gives plain NPO.
"""

from leakbench.unlearn.trainer import UnlearningTrainer, nll, token_logprobs

DEFAULTS = {"steps": 40, "lr": 5e-4, "retain_weight": 1.0, "beta": 0.1}


class NPOTrainer(UnlearningTrainer):
    method = "npo"
    needs_reference = True

    def unlearning_loss(self, model, inputs):
        import torch.nn.functional as F

        args = (inputs["forget_input_ids"], inputs["forget_attention_mask"], inputs["forget_labels"])
        picked, _, _ = token_logprobs(model, *args)
        ref_picked, _, _ = self.reference(lambda m: token_logprobs(m, *args))
        log_ratio = picked.sum(-1) - ref_picked.sum(-1)
        loss = -(2.0 / self.beta) * F.logsigmoid(-self.beta * log_ratio).mean()
        if self.retain_weight:
            loss = loss + self.retain_weight * nll(model, inputs, "retain")
        return loss
