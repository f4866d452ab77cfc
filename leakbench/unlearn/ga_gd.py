"""GA+GD: gradient ascent on the forget documents plus gradient descent (NLL) on retain documents."""

from leakbench.unlearn.trainer import UnlearningTrainer, nll

DEFAULTS = {"steps": 40, "lr": 8e-5, "retain_weight": 1.0}


class GAGDTrainer(UnlearningTrainer):
    method = "ga_gd"

    def unlearning_loss(self, model, inputs):
        return -nll(model, inputs, "forget") + self.retain_weight * nll(model, inputs, "retain")
