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

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        model.train()
        if callable(getattr(getattr(self, "optimizer", None), "train", None)):  # as Trainer's step (schedule-free)
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        scale = 1.0 / getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        with self.accelerator.no_sync(model):  # one gradient sync per step: after the perturbed forget pass
            retain = self.retain_nll(model, inputs)
            if retain.requires_grad:
                self.accelerator.backward(retain * scale)
            grads = torch.autograd.grad(self.forget_loss(model, inputs), params, allow_unused=True)
        if self.args.world_size > 1:  # the global batch's ascent direction, as one process would compute it
            grads = tuple(None if g is None else self.accelerator.reduce(g, reduction="mean") for g in grads)
        present = [g for g in grads if g is not None]
        saved = [p.detach().clone() for p in params]  # restored exactly, not by subtracting the shift back
        if present:
            norm = torch.sqrt(sum((g.float() ** 2).sum() for g in present))
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    if g is not None:
                        p.add_(g, alpha=self.hyper["rho"] / (norm.item() + 1e-12))
        forget = self.forget_loss(model, inputs)
        self.accelerator.backward(forget * scale)
        with torch.no_grad():
            for p, kept in zip(params, saved, strict=True):
                p.copy_(kept)
        return (forget + retain).detach() * scale
