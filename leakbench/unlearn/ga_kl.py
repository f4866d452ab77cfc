"""GA+KL: gradient ascent on the forget documents plus KL(original || current) on retain documents."""

from leakbench.unlearn.trainer import UnlearningTrainer, nll, token_logprobs

DEFAULTS = {"steps": 40, "lr": 5e-5, "retain_weight": 1.0}


class GAKLTrainer(UnlearningTrainer):
    method = "ga_kl"
    needs_reference = True

    def unlearning_loss(self, model, inputs):
        args = (inputs["retain_input_ids"], inputs["retain_attention_mask"], inputs["retain_labels"])
        _, mask, logp = token_logprobs(model, *args)
        _, _, ref_logp = self.reference(lambda m: token_logprobs(m, *args))
        # KL(p_ref || p_cur) per position, averaged over real tokens
        kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
        kl = (kl * mask).sum() / mask.sum().clamp(min=1)
        return -nll(model, inputs, "forget") + self.retain_weight * kl
