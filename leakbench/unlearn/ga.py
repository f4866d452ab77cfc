"""GA: gradient ascent on the forget documents' negative log-likelihood."""

from leakbench.unlearn.trainer import UnlearningTrainer, nll

DEFAULTS = {"steps": 40, "lr": 3e-5, "retain_weight": 0.0}


class GATrainer(UnlearningTrainer):
    method = "ga"

    def unlearning_loss(self, model, inputs):
        return -nll(model, inputs, "forget")
