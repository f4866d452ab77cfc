"""GA+KL: gradient ascent on the forget documents plus KL(original || current) on retain documents."""

from leakbench.unlearn.trainer import UnlearningTrainer


class GAKLTrainer(UnlearningTrainer):
    method = "ga_kl"
    needs_reference = True

    def forget_loss(self, model, inputs):
        return -self.nll(model, inputs["forget"])

    def retain_loss(self, model, inputs):
        return self.retain_kl(model, inputs)
