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

    def kl(cur: int) -> float:
        return sum(math.exp(logp(REF, cur, j)) * (logp(REF, cur, j) - logp(A, cur, j)) for j in range(V))

    assert loss.item() == pytest.approx((kl(RETAIN[0]) + kl(RETAIN[1])) / 2, rel=1e-6)


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


def test_on_policy_pairs_pair_leaking_samples_with_clean_ones(tiny_model_dir, monkeypatch):
    """A model whose greedy completion is the true value and whose samples are a clean placeholder gives pairs
    whose rejected side is the value and whose chosen side is the placeholder."""
    from leakbench.data import read_table
    from leakbench.training import load_causal_lm
    from leakbench.unlearn import pairs as pairs_module

    model, tokenizer = load_causal_lm(tiny_model_dir)
    docs = [d for d in read_table("forget", subset="mini") if d["language"] == "dotenv"][:2]
    subjects = read_table("subjects", subset="mini")
    chosen_sites = pairs_module.sites(tokenizer, docs)

    def fake_generate(input_ids, do_sample, num_return_sequences=1, **kwargs):
        rows = []
        for i in range(input_ids.shape[0]):
            site = chosen_by_prompt[tuple(input_ids[i][input_ids[i] != tokenizer.pad_token_id].tolist())]
            value = site.doc["text"][site.occurrence["start"] : site.occurrence["end"]]
            for _ in range(num_return_sequences):  # greedy decoding leaks the value, sampling gives a placeholder
                text = site.head + ("changeme" if do_sample else value) + "\nNEXT=1"
                rows.append(input_ids[i].tolist() + tokenizer(text, add_special_tokens=False)["input_ids"])
        width = max(map(len, rows))
        return torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])

    chosen_by_prompt = {tuple(s.prompt): s for s in chosen_sites}
    monkeypatch.setattr(model, "generate", fake_generate)
    pairs, counts = pairs_module.on_policy_pairs(model, tokenizer, docs, subjects, prompts=4, samples=2, seed=0)
    assert counts["prompts"] == 4 and counts["samples"] == 8 and counts["leaking"] == 4 and counts["pairs"] == 4
    for pair in pairs:
        assert tokenizer.decode(pair.chosen).endswith("changeme")
        site = chosen_by_prompt[tuple(pair.prompt)]
        assert tokenizer.decode(pair.rejected).endswith(site.doc["text"][site.occurrence["start"]:
                                                                         site.occurrence["end"]])  # fmt: skip
