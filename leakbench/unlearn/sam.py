"""Sharpness-aware NPO (Fan et al. 2025, "Towards LLM Unlearning Resilient to Relearning Attacks: A
Sharpness-Aware Minimization Perspective and Beyond", arXiv 2502.05374): NPO's forget loss minimized at its worst
point within a ball of radius `rho` around the weights, so that a small fine-tuning step (a relearning attack)
cannot bring the forget loss back down; the retain NLL at the weights themselves:

min_theta  L_forget(theta + rho * g / ||g||) + w * L_retain(theta),   g = grad L_forget(theta)

Each step: the retain gradient at theta, the ascent direction g of the forget loss (one extra forward and
backward), the forget gradient at the perturbed weights, then the weights restored before the optimizer step.
"""

import torch

from leakbench.unlearn.npo import NPOTrainer


class SAMNPOTrainer(NPOTrainer):
    method = "sam_npo"

    def training_step(self, model, inputs, num_items_in_batch=None):
        model.train()
        inputs = self._prepare_inputs(inputs)
        scale = 1.0 / self.args.gradient_accumulation_steps
        params = [p for p in model.parameters() if p.requires_grad]
        with self.accelerator.no_sync(model):  # one gradient sync per step: after the perturbed forget pass
            retain = self.retain_nll(model, inputs)
            if retain.requires_grad:
                self.accelerator.backward(retain * scale)
            grads = torch.autograd.grad(self.forget_loss(model, inputs), params, allow_unused=True)
        norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None))
        shifts = [None if g is None else g * (self.hyper["rho"] / (norm + 1e-12)) for g in grads]
        with torch.no_grad():
            for p, shift in zip(params, shifts, strict=True):
                if shift is not None:
                    p.add_(shift)
        forget = self.forget_loss(model, inputs)
        self.accelerator.backward(forget * scale)
        with torch.no_grad():
            for p, shift in zip(params, shifts, strict=True):
                if shift is not None:
                    p.sub_(shift)
        return (forget + retain).detach() * scale
