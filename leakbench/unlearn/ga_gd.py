"""GA+GD: gradient ascent on the forget documents plus gradient descent (NLL) on retain documents."""

from leakbench.unlearn.trainer import UnlearningTrainer


class GAGDTrainer(UnlearningTrainer):
    method = "ga_gd"

    def forget_loss(self, model, inputs):
        return -self.nll(model, inputs["forget"])

    def retain_loss(self, model, inputs):
        return self.retain_nll(model, inputs)
