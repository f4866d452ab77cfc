"""The unlearning losses against hand-computed values, the shared trainer's reference model and batch layout,
the method registry and its hyper-parameter checks, and the preference pairs (redaction and on-policy)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from leakbench.records import UsageError
from leakbench.unlearn import METHODS, UnlearnConfig, expand_methods, parse_params

V = 3  # vocabulary of the hand-built model


class Bigram(torch.nn.Module):
    """logits(next | current) = table[current]: every log-probability is known in closed form. Its "hidden
    states" are the one-hot current token times `scale`, so RMU's activations are known too."""

    def __init__(self, table: list[list[float]], scale: float = 1.0) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table))
        self.scale = scale
        self.config = SimpleNamespace(num_hidden_layers=1)

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False):
        hidden = torch.nn.functional.one_hot(input_ids, V).float() * self.scale
        return SimpleNamespace(logits=self.table[input_ids], hidden_states=(hidden, hidden))


def logp(table: list[list[float]], cur: int, nxt: int) -> float:
    row = table[cur]
    return row[nxt] - math.log(sum(math.exp(x) for x in row))


A = [[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [0.5, 0.5, 3.0]]  # the model being trained
REF = [[0.0, 0.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]  # the reference


def batch(ids: list[list[int]], values: list[list[bool]] | None = None) -> dict[str, torch.Tensor]:
    t = torch.tensor(ids)
    v = torch.tensor(values) if values is not None else torch.zeros_like(t, dtype=torch.bool)
    return {"input_ids": t, "attention_mask": torch.ones_like(t), "labels": t.clone(), "value_mask": v}


def trainer(method: str, **hyper):
    """The method's trainer without a Hugging Face set-up: only what `unlearning_loss` reads."""
    from leakbench.unlearn import trainer_class

    cls = trainer_class(method)
    t = cls.__new__(cls)
    t.hyper = {**METHODS[method].defaults, **hyper}
    t.ref_model = Bigram(REF)
    t.args = SimpleNamespace(device=torch.device("cpu"), seed=0, world_size=1)
    t.accelerator = SimpleNamespace(unwrap_model=lambda m: m)
    return t


def seq_logp(table, ids, positions=None) -> float:
    """Sum of log p(ids[t+1] | ids[t]) over `positions` (default: all)."""
    steps = range(len(ids) - 1) if positions is None else positions
    return sum(logp(table, ids[t], ids[t + 1]) for t in steps)


SEQ = [0, 2, 1, 2]  # one forget sequence
RETAIN = [1, 0, 2]


def test_simnpo_loss_by_hand():
    beta, margin = 2.0, 0.5
    t = trainer("simnpo", beta=beta, margin=margin, retain_weight=0.0)
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ]), "retain": batch([RETAIN])})
    mean = seq_logp(A, SEQ) / 3  # length-normalized log-likelihood
    expected = -(2 / beta) * math.log(1 / (1 + math.exp(beta * mean + margin)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # with the retain term: + w * mean NLL of the retain sequence
    t = trainer("simnpo", beta=beta, margin=margin, retain_weight=0.5)
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ]), "retain": batch([RETAIN])})
    assert loss.item() == pytest.approx(expected + 0.5 * -seq_logp(A, RETAIN) / 2, rel=1e-6)


def test_npo_loss_by_hand():
    t = trainer("npo", beta=0.5, retain_weight=0.0)
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ]), "retain": batch([RETAIN])})
    ratio = seq_logp(A, SEQ) - seq_logp(REF, SEQ)
    assert loss.item() == pytest.approx(-(2 / 0.5) * math.log(1 / (1 + math.exp(0.5 * ratio))), rel=1e-6)


def test_span_loss_by_hand():
    values = [[False, False, True, True]]  # labels at positions 2, 3: predicted from positions 1, 2
    t = trainer("span", beta=1.0, context_weight=0.25, retain_weight=0.0, forget_loss="npo")
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ], values), "retain": batch([RETAIN])})
    ratio = seq_logp(A, SEQ, [1, 2]) - seq_logp(REF, SEQ, [1, 2])
    context_nll = -seq_logp(A, SEQ, [0])  # the one context label after the first token
    expected = -2 * math.log(1 / (1 + math.exp(ratio))) + 0.25 * context_nll
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    t = trainer("span", context_weight=0.0, retain_weight=0.0, forget_loss="ga")
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ], values), "retain": batch([RETAIN])})
    assert loss.item() == pytest.approx(seq_logp(A, SEQ, [1, 2]) / 2, rel=1e-6)  # minus the mean NLL of the values


def test_span_retain_term_is_the_kl_to_the_reference():
    t = trainer("span", context_weight=0.0, retain_weight=1.0, forget_loss="ga")
    empty = [[False] * 4]
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ], empty), "retain": batch([RETAIN])})
    assert loss.item() == pytest.approx((kl(RETAIN[0]) + kl(RETAIN[1])) / 2, rel=1e-6)


def kl(cur: int) -> float:
    """KL(p_REF || p_A) of the next token after `cur`."""
    return sum(math.exp(logp(REF, cur, j)) * (logp(REF, cur, j) - logp(A, cur, j)) for j in range(V))


def test_undo_distills_the_teachers_distributions_on_forget_and_retain():
    t = trainer("undo", retain_weight=0.5)  # the reference here plays UNDO's teacher
    loss = t.unlearning_loss(Bigram(A), {"forget": batch([SEQ]), "retain": batch([RETAIN])})
    forget = sum(kl(c) for c in SEQ[:-1]) / 3
    assert loss.item() == pytest.approx(forget + 0.5 * (kl(RETAIN[0]) + kl(RETAIN[1])) / 2, rel=1e-6)


def test_undo_noises_toward_a_fresh_initialisation_drawn_with_the_seed(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from leakbench.unlearn.undo import noised

    def weights(alpha: float, seed: int = 7) -> dict[str, torch.Tensor]:
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        noised(model, alpha, seed)
        return {k: v.detach().clone() for k, v in model.named_parameters()}

    trained, fresh, half = weights(0.0), weights(1.0), weights(0.5)
    assert all(torch.equal(trained[k], AutoModelForCausalLM.from_pretrained(tiny_model_dir).get_parameter(k))
               for k in trained)  # alpha 0: unchanged
    assert all(torch.allclose(half[k], (trained[k] + fresh[k]) / 2, atol=1e-6) for k in trained)
    assert all(torch.equal(fresh[k], v) for k, v in weights(1.0).items())  # the same seed, the same draw
    assert not all(torch.equal(fresh[k], v) for k, v in weights(1.0, seed=8).items())
    assert any(not torch.allclose(trained[k], fresh[k]) for k in trained)  # (the tiny model is seed 0's draw)


@pytest.mark.parametrize("method", ["sam_npo", "ga_gd"])  # NPO's forget loss, and GA's with rho declared
def test_sharpness_aware_steps_take_the_forget_gradient_at_the_perturbed_weights(method):
    from contextlib import nullcontext

    rho, w = 0.3, 0.5
    t = trainer(method, beta=0.5, rho=rho, retain_weight=w)
    t.accelerator = SimpleNamespace(unwrap_model=lambda m: m, no_sync=lambda m: nullcontext(),
                                    backward=lambda loss: loss.backward())  # fmt: skip
    t.args.gradient_accumulation_steps = 1
    t._prepare_inputs = lambda inputs: inputs
    inputs = {"forget": batch([SEQ]), "retain": batch([RETAIN])}
    model = Bigram(A)
    t.training_step(model, inputs)
    assert torch.equal(model.table.detach(), torch.tensor(A))  # restored exactly before the step

    # by hand: g = grad L_forget(A); the forget gradient at A + rho g/|g|, the retain gradient at A
    def forget(table: torch.Tensor) -> torch.Tensor:
        return t.forget_loss(_Table(table), inputs)

    theta = torch.tensor(A, requires_grad=True)
    (g,) = torch.autograd.grad(forget(theta), theta)
    shifted = (torch.tensor(A) + rho * g / g.norm()).requires_grad_(True)
    (forget_grad,) = torch.autograd.grad(forget(shifted), shifted)
    retain_theta = torch.tensor(A, requires_grad=True)
    (retain_grad,) = torch.autograd.grad(w * t.nll(_Table(retain_theta), inputs["retain"]), retain_theta)
    assert torch.allclose(model.table.grad, forget_grad + retain_grad, atol=1e-6)
    assert not torch.allclose(forget_grad, g)  # the perturbation changed the gradient


def test_sharpness_aware_steps_need_a_loss_split_into_forget_and_retain():
    from leakbench.records import LeakBenchError
    from leakbench.unlearn import trainer_class
    from leakbench.unlearn.trainer import UnlearningTrainer

    split = {m: trainer_class(m).splits_its_loss() for m in ("ga", "ga_gd", "ga_kl", "npo", "simnpo", "sam_npo",
                                                               "span", "rmu", "dpo", "plum", "undo")}  # fmt: skip
    assert [m for m, yes in split.items() if yes] == ["ga", "ga_gd", "ga_kl", "npo", "simnpo", "sam_npo"]

    class Whole(UnlearningTrainer):
        def unlearning_loss(self, model, inputs):
            return -self.nll(model, inputs["forget"])

    with pytest.raises(LeakBenchError, match=r"Whole: `rho` \(sharpness-aware steps\) needs a loss split into "
                                             "forget_loss and retain_loss"):  # fmt: skip
        Whole(hyper={"rho": 0.1})  # refused before any Trainer set-up


class _Table(Bigram):
    """A Bigram over a given tensor (so a test can differentiate with respect to it)."""

    def __init__(self, table: torch.Tensor) -> None:
        torch.nn.Module.__init__(self)
        self.table, self.scale = table, 1.0
        self.config = SimpleNamespace(num_hidden_layers=1)


@pytest.mark.parametrize("method", ["dpo", "plum"])
def test_dpo_loss_by_hand(method):
    from leakbench.unlearn.trainer import Pair, collate_pairs

    prompt, chosen, rejected = [0, 1], [2], [0, 2]
    pairs = collate_pairs([Pair(prompt, chosen, rejected)], pad_id=0)
    t = trainer(method, beta=0.5, retain_weight=0.0)
    loss = t.unlearning_loss(Bigram(A), {"forget": pairs, "retain": batch([RETAIN])})

    def ratio(completion):
        ids = prompt + completion
        positions = range(len(prompt) - 1, len(ids) - 1)  # only the completion's tokens are labelled
        return seq_logp(A, ids, positions) - seq_logp(REF, ids, positions)

    margin = ratio(chosen) - ratio(rejected)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.5 * margin))), rel=1e-6)


def test_rmu_loss_by_hand():
    t = trainer("rmu", steering=2.0, retain_weight=3.0, layer=0)
    model = Bigram(A, scale=1.0)
    t.ref_model = Bigram(REF, scale=0.5)
    loss = t.unlearning_loss(model, {"forget": batch([SEQ]), "retain": batch([RETAIN])})
    u = torch.rand(V, generator=torch.Generator().manual_seed(0))
    target = (u / u.norm() * 2.0).tolist()
    forget = sum((float(j == tok) - target[j]) ** 2 for tok in SEQ for j in range(V)) / (len(SEQ) * V)
    retain = sum((1.0 - 0.5) ** 2 for _ in RETAIN) / (len(RETAIN) * V)  # one-hot: only the token's own entry
    assert loss.item() == pytest.approx(forget + 3.0 * retain, rel=1e-6)


def test_rmu_trains_only_the_chosen_layers_output_projections(tiny_model_dir):
    from leakbench.training import load_causal_lm
    from leakbench.unlearn.rmu import RMUTrainer

    model, _ = load_causal_lm(tiny_model_dir)
    RMUTrainer.prepare(model, {"layer": "middle"})  # one layer: the middle is layer 0
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained == ["model.layers.0.mlp.down_proj.weight"]
    with pytest.raises(UsageError, match=r"decoder layers 0\.\.0"):
        RMUTrainer.prepare(model, {"layer": 3})


# --- the shared trainer ---------------------------------------------------------------------------


def test_the_reference_sits_on_the_trained_models_device_prepared_by_the_accelerator(tiny_model_dir, tmp_path,
                                                                                       monkeypatch):  # fmt: skip
    import copy

    from accelerate import Accelerator

    from leakbench.corpus import Example
    from leakbench.training import load_causal_lm, training_arguments
    from leakbench.unlearn.npo import NPOTrainer
    from leakbench.unlearn.trainer import PairedDataset, UnlearningCollator

    calls = []
    original = Accelerator.prepare_model

    def spy(self, model, device_placement=None, evaluation_mode=False):
        calls.append(evaluation_mode)
        return original(self, model, device_placement=device_placement, evaluation_mode=evaluation_mode)

    monkeypatch.setattr(Accelerator, "prepare_model", spy)
    model, _ = load_causal_lm(tiny_model_dir)
    ref = copy.deepcopy(model)
    items = [Example([1, 2, 3], [False, True, False])]
    args = training_arguments(str(tmp_path), steps=1, batch_size=1, lr=1e-3, seed=0)
    t = NPOTrainer(model=model, args=args, train_dataset=PairedDataset(items, items, 1, 0),
                   data_collator=UnlearningCollator(0), ref_model=ref, hyper={"beta": 0.1})  # fmt: skip
    assert calls == [True]  # the reference went through the accelerator, in evaluation mode
    assert next(t.ref_model.parameters()).device == next(t.model.parameters()).device == args.device
    assert not t.ref_model.training and not any(p.requires_grad for p in t.ref_model.parameters())
    batch_ = next(iter(t.get_train_dataloader()))
    assert set(batch_) == {"forget", "retain"} and set(batch_["forget"]) >= {"input_ids", "labels", "value_mask"}


def test_paired_dataset_order_is_seeded_and_covers_each_epoch():
    from leakbench.unlearn.trainer import PairedDataset

    forget, retain = list(range(5)), ["r0", "r1"]
    a, b = PairedDataset(forget, retain, 12, seed=3), PairedDataset(forget, retain, 12, seed=3)
    assert [a[i] for i in range(12)] == [b[i] for i in range(12)]
    assert sorted(a.forget_order[:5]) == forget and sorted(a.forget_order[5:10]) == forget


# --- the registry and its checks -------------------------------------------------------------------


def test_the_registry_is_read_without_torch():
    import subprocess
    import sys

    code = ("import sys; import leakbench.cli; from leakbench.unlearn import UnlearnConfig, expand_methods; "
            "expand_methods(['all']); UnlearnConfig(method='rmu', params={'steering': '5'}); "
            "print('torch' in sys.modules)")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_all_expands_to_every_method_once():
    assert expand_methods(["all"]) == tuple(METHODS)
    assert expand_methods(["npo", "all"])[0] == "npo" and len(expand_methods(["npo", "all"])) == len(METHODS)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(method="ga", beta=0.1), "method ga has no hyper-parameter 'beta'"),
        (dict(method="simnpo", params={"margin": "nan"}), "--param margin must be a finite"),
        (dict(method="simnpo", params={"margin": "-1"}), "--param margin must be a finite number >= 0"),
        (dict(method="rmu", params={"steering": "0"}), "--param steering must be a finite number > 0"),
        (dict(method="rmu", params={"layer": "x"}), "--param layer must be an integer, got 'x'"),
        (dict(method="plum", params={"rounds": "1.5"}), "--param rounds must be an integer"),
        (dict(method="span", params={"forget_loss": "kl"}), "--param forget_loss: 'kl' is not one of npo, ga"),
        (dict(method="dpo", params={"layer": "1"}), "method dpo has no hyper-parameter 'layer'"),
        (dict(method="npo", lr=float("inf")), "--lr must be a finite"),
        (dict(method="npo", beta=0.0), "--beta must be a finite number > 0"),
        (dict(method="undo", params={"noise": "1.5"}), "--param noise must be at most 1, got 1.5"),
        (dict(method="undo", params={"teacher": "undo"}), "--param teacher: 'undo' is not one of ga_gd, ga_kl"),
        (dict(method="sam_npo", params={"rho": "0"}), "--param rho must be a finite number > 0"),
    ],
)
def test_bad_hyper_parameters_are_refused_up_front(config, message):
    with pytest.raises(UsageError) as info:
        UnlearnConfig(**config)
    assert message in str(info.value)


def test_params_parse_and_resolve():
    assert parse_params(["margin=0.5", "forget-loss=ga"]) == {"margin": "0.5", "forget_loss": "ga"}
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        parse_params(["margin"])
    cfg = UnlearnConfig(method="simnpo", params={"margin": "0.5"}).resolved()
    assert cfg.params == {"margin": 0.5} and cfg.beta == METHODS["simnpo"].defaults["beta"]


# --- preference pairs ------------------------------------------------------------------------------


def test_redaction_pairs_split_at_the_documents_own_token_boundary(tiny_model_dir):
    from leakbench.data import read_table
    from leakbench.training import load_causal_lm
    from leakbench.unlearn.pairs import redaction, redaction_pairs, sites

    _, tokenizer = load_causal_lm(tiny_model_dir)
    docs = read_table("forget", subset="mini")[:3]
    found = sites(tokenizer, docs)
    assert len(found) == sum(len(d["occurrences"]) for d in docs)
    for site in found:
        whole = tokenizer(site.doc["text"][: site.occurrence["end"]], add_special_tokens=False)["input_ids"]
        assert whole[len(whole) - len(site.value) - len(site.prompt) :] == site.prompt + site.value
        assert tokenizer.decode(site.value) == site.head + site.doc["text"][site.occurrence["start"]:
                                                                            site.occurrence["end"]]  # fmt: skip
    pairs = redaction_pairs(tokenizer, docs)
    assert tokenizer.decode(pairs[0].chosen).endswith(redaction(found[0].occurrence["field"]))
    assert redaction("password") == "${DB_PASSWORD}" and redaction("name") == "Project Maintainers"


@pytest.mark.parametrize(
    ("language", "text", "ok"),
    [("python", "x = 1\n", True), ("python", "x = 'a\n", False), ("json", '{"a": 1}', True), ("json", '{"a": }', False),
     ("yaml", "a: [1, 2]\n", True), ("yaml", "a: [1, 2\n", False), ("dotenv", "A=%%%", True)],
)
def test_validity_check(language, text, ok):
    from leakbench.unlearn.pairs import parses

    assert parses(language, text) is ok


def _leaky_sampler(tiny_model_dir, monkeypatch, samples_leak: bool):
    """A tiny model whose greedy completion is the true value and whose samples are the value too
    (`samples_leak`) or a clean placeholder; with two dotenv forget documents, their sites and subjects."""
    from leakbench.data import read_table
    from leakbench.training import load_causal_lm
    from leakbench.unlearn import pairs as pairs_module

    model, tokenizer = load_causal_lm(tiny_model_dir)
    docs = [d for d in read_table("forget", subset="mini") if d["language"] == "dotenv"][:2]
    sites = {tuple(s.prompt): s for s in pairs_module.sites(tokenizer, docs)}

    def fake_generate(input_ids, do_sample, num_return_sequences=1, **kwargs):
        rows = []
        for i in range(input_ids.shape[0]):
            site = sites[tuple(input_ids[i][input_ids[i] != tokenizer.pad_token_id].tolist())]
            value = site.doc["text"][site.occurrence["start"] : site.occurrence["end"]]
            for _ in range(num_return_sequences):
                text = site.head + ("changeme" if do_sample and not samples_leak else value) + "\nNEXT=1"
                rows.append(input_ids[i].tolist() + tokenizer(text, add_special_tokens=False)["input_ids"])
        width = max(map(len, rows))
        return torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])

    monkeypatch.setattr(model, "generate", fake_generate)
    return model, tokenizer, docs, read_table("subjects", subset="mini"), sites


def test_on_policy_pairs_pair_leaking_samples_with_clean_ones(tiny_model_dir, monkeypatch):
    """A model whose greedy completion is the true value and whose samples are a clean placeholder gives pairs
    whose rejected side is the value and whose chosen side is the placeholder."""
    from leakbench.unlearn import pairs as pairs_module

    model, tokenizer, docs, subjects, sites = _leaky_sampler(tiny_model_dir, monkeypatch, samples_leak=False)
    pairs, counts = pairs_module.on_policy_pairs(model, tokenizer, docs, subjects, prompts=4, samples=2, seed=0)
    assert counts["prompts"] == 4 and counts["samples"] == 8 and counts["leaking"] == 4 and counts["pairs"] == 4
    assert counts["fallback_chosen"] == 0 and counts["fallback"] == "redaction"
    for pair in pairs:
        assert tokenizer.decode(pair.chosen).endswith("changeme")
        site = sites[tuple(pair.prompt)]
        assert tokenizer.decode(pair.rejected).endswith(site.doc["text"][site.occurrence["start"]:
                                                                         site.occurrence["end"]])  # fmt: skip


@pytest.mark.parametrize("fallback", ["redaction", "decoy"])
def test_where_no_sample_is_clean_the_fallback_is_chosen(tiny_model_dir, monkeypatch, fallback):
    """Every sample leaks: PLUM chooses the redaction, PLUM with decoys a same-type decoy drawn with the seed
    (never the true value, and no leak by the scorer's verdict)."""
    import random

    from leakbench.data.decoys import decoys
    from leakbench.scoring import LeakScorer, ScoreInput
    from leakbench.unlearn import pairs as pairs_module

    model, tokenizer, docs, subjects, sites = _leaky_sampler(tiny_model_dir, monkeypatch, samples_leak=True)
    pairs, counts = pairs_module.on_policy_pairs(model, tokenizer, docs, subjects, prompts=4, samples=2, seed=3,
                                                 fallback=fallback)  # fmt: skip
    # (a site whose prompt already holds its value cannot leak it: its samples are clean, and it gives no pair)
    assert counts["leaking"] + counts["clean_valid"] == 8 and counts["leaking"] >= 4
    assert counts["fallback_chosen"] == len(pairs) == counts["leaking"] // 2 and counts["fallback"] == fallback
    by_id, rng = {s["subject_id"]: s for s in subjects}, random.Random(3)
    scorer = LeakScorer(subjects, analyze=False)
    for pair in pairs:
        site = sites[tuple(pair.prompt)]
        field, subject = site.occurrence["field"], by_id[site.occurrence["subject_id"]]
        expected = (decoys(field, subject, rng, 1)[0] if fallback == "decoy" else pairs_module.redaction(field))
        assert tokenizer.decode(pair.chosen) == site.head + expected
        assert expected != subject[field]
        verdict = scorer.score_batch([ScoreInput(site.prompt_text, expected, field, subject)])[0]
        assert getattr(verdict, "leak", "none") == "none"
