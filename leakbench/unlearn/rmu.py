"""RMU (Li et al. 2024, "The WMDP Benchmark", Representation Misdirection for Unlearning).

On forget documents, push the activations after decoder layer `layer` toward a fixed random direction scaled
by `steering`; on retain documents, keep them where the frozen original model puts them:

loss = mean ||h_cur(forget) - steering * u||^2 + w * mean ||h_cur(retain) - h_ref(retain)||^2

Only the MLP down-projections of layers layer-2 .. layer are trained (WMDP's choice; OpenUnlearning's
default), so the representation is scrambled early and everything above it is left as it was.
"""

import re

import torch
import torch.nn.functional as F

from leakbench.records import LeakBenchError, UsageError
from leakbench.unlearn.trainer import UnlearningTrainer

# The MLP's output projection in each family's naming: Llama/Mistral/Qwen2 down_proj, GPT-2/BigCode c_proj.
_MLP_OUT = re.compile(r"\.(?:layers|h)\.(\d+)\.mlp\.(?:down_proj|c_proj)\.weight$")


def layer_index(model, layer) -> int:
    """The steered layer: an index, or "middle" (number of layers // 2), checked against the model."""
    layers = model.config.num_hidden_layers
    index = layers // 2 if layer == "middle" else layer
    if not 0 <= index < layers:
        raise UsageError(f"--param layer={layer}: the model has decoder layers 0..{layers - 1}")
    return index


def trained_parameter_names(model, layer: int) -> list[str]:
    """The MLP output-projection weights of layers layer-2 .. layer."""
    wanted = set(range(max(0, layer - 2), layer + 1))
    return [name for name, _ in model.named_parameters()
            if (m := _MLP_OUT.search(name)) and int(m.group(1)) in wanted]  # fmt: skip


def hidden_after(model, batch, layer: int) -> torch.Tensor:
    """The residual stream after decoder layer `layer` (hidden_states[0] is the embeddings)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    return out.hidden_states[layer + 1].float()


def squared_error(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed squared difference over the real (unpadded) positions, and how many entries that is (positions x
    hidden size): their ratio is the mean squared error."""
    mask = mask.bool()
    return F.mse_loss(h[mask], target.expand_as(h)[mask], reduction="sum"), mask.sum() * h.shape[-1]


class RMUTrainer(UnlearningTrainer):
    method = "rmu"
    needs_reference = True

    @staticmethod
    def prepare(model, hyper) -> None:
        """Freeze all but the trained output projections (under LoRA the adapters are what trains)."""
        layer = layer_index(model, hyper["layer"])
        if any("lora_" in n for n, _ in model.named_parameters()):
            return
        keep = set(trained_parameter_names(model, layer))
        if not keep:
            raise LeakBenchError(f"RMU: no MLP output projection found in {type(model).__name__}'s layers")
        for name, p in model.named_parameters():
            p.requires_grad_(name in keep)

    def target(self, hidden: int, device) -> torch.Tensor:
        if not hasattr(self, "_target"):  # one random direction per run, from the run's seed
            u = torch.rand(hidden, generator=torch.Generator().manual_seed(self.args.seed))
            self._target = u / u.norm() * self.hyper["steering"]
        return self._target.to(device)

    def unlearning_loss(self, model, inputs):
        layer = layer_index(self.accelerator.unwrap_model(model), self.hyper["layer"])
        forget, retain = inputs["forget"], inputs["retain"]
        h = hidden_after(model, forget, layer)
        loss = self.token_mean(*squared_error(h, self.target(h.shape[-1], h.device), forget["attention_mask"]))
        weight = self.hyper["retain_weight"]
        if weight:
            h_retain = hidden_after(model, retain, layer)
            ref = self.reference(lambda m: hidden_after(m, retain, layer))
            loss = loss + weight * self.token_mean(*squared_error(h_retain, ref, retain["attention_mask"]))
        return loss
