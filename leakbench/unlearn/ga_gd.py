"""GA+GD: gradient ascent on the forget documents plus gradient descent (NLL) on retain documents."""

from leakbench.unlearn.trainer import UnlearningTrainer


class GAGDTrainer(UnlearningTrainer):
    method = "ga_gd"

    def unlearning_loss(self, model, inputs):
        return -self.nll(model, inputs["forget"]) + self.retain_nll(model, inputs)
