"""UNDO (Lee et al. 2025, "Distillation Robustifies Unlearning", arXiv 2506.06278): Unlearn, Noise, Distill on
Outputs.

1. Unlearn: the `teacher` method, at its own defaults, on a copy of the victim; this copy is the teacher.
2. Noise: the student is the teacher's weights shrunk toward a fresh initialisation of the same architecture,
   theta_student = (1 - alpha) * theta_teacher + alpha * theta_init (alpha = `noise`; theta_init drawn with the
   run's seed by the model's own initialiser), so the memorized weights do not survive as they were.
3. Distill: `steps` steps of the student matching the teacher's next-token distributions, on the forget documents
   (the teacher's suppressed behaviour there) and, weighted by `retain_weight`, on the retain documents:

loss = KL(p_teacher || p_student)(forget) + w * KL(p_teacher || p_student)(retain)

The paper distills on the pretraining mixture; here that is the forget and retain documents the other methods
see, so UNDO gets no data they lack. `noise` trades robustness for the distillation budget needed to recover.
"""

import copy
from typing import Any

import torch

from leakbench.unlearn import teacher_of
from leakbench.unlearn.trainer import ForgetSource, UnlearningTrainer


def noised(model, alpha: float, seed: int) -> None:
    """Shrink every weight of `model` toward a fresh initialisation drawn with `seed`, in place."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(model)(model.config)
    fresh_params = dict(fresh.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.mul_(1.0 - alpha).add_(fresh_params[name].to(p.device, p.dtype), alpha=alpha)


class UNDOTrainer(UnlearningTrainer):
    method = "undo"
    supports_lora = False  # the noise reaches every weight

    @classmethod
    def forget_items(cls, source: ForgetSource, round: int) -> list[Any]:
        """Unlearn a teacher, noise the model being trained toward a fresh start, and distill from the teacher."""
        h = source.hyper
        teacher = copy.deepcopy(source.model)
        wall = source.train_method(h["teacher"], teacher)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        source.model.load_state_dict(teacher.state_dict())  # the student starts as the teacher ...
        noised(source.model, h["noise"], source.seed)  # ... noised
        source.reference, source.wall_time_s = teacher, source.wall_time_s + wall
        source.record["teacher"] = teacher_of(h)  # a copy: the record never aliases the registry
        source.log(f"{source.method}: teacher {h['teacher']} unlearned ({wall:.1f}s); distilling into a copy "
                   f"noised at alpha {h['noise']}")  # fmt: skip
        return source.encoded

    def unlearning_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        return self.kl_to_reference(model, inputs["forget"]) + self.retain_kl(model, inputs)
