"""GA: gradient ascent on the forget documents' negative log-likelihood (Jang et al. 2023; Gu et al. 2025)."""

from leakbench.unlearn.trainer import UnlearningTrainer


class GATrainer(UnlearningTrainer):
    method = "ga"

    def forget_loss(self, model, inputs):
        return -self.nll(model, inputs["forget"])
