"""Victims and unlearning on CPU with a tiny model: the mechanics, the loss directions, bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest

from leakbench.cli import main
from leakbench.records import LeakBenchError
from leakbench.unlearn import METHODS, UnlearnConfig, unlearn
from leakbench.victim import build

STEPS = dict(steps=6, lr=3e-3, batch_size=4)


@pytest.fixture(scope="module")
def victim(toy_victims):
    return toy_victims["victim"]


@pytest.fixture(scope="module")
def tiny_cfg(toy_victims):
    return toy_victims["config"]


def test_victim_is_a_loadable_causal_lm_with_a_record(victim, tiny_cfg):
    from transformers import AutoModelForCausalLM

    record = json.loads((victim / "victim.json").read_text())
    assert record["subset"] == "mini" and record["data_release_hash"]
    assert record["config"]["epochs"] == 2 and record["steps"] >= 1
    assert AutoModelForCausalLM.from_pretrained(victim).config.hidden_size == 32


def test_a_second_build_with_the_same_arguments_is_reused(victim, tiny_cfg):
    messages = []
    before = (victim / "model.safetensors").stat().st_mtime_ns
    build(victim, tiny_cfg, log=messages.append)
    assert any("reusing" in m for m in messages)
    assert (victim / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(LeakBenchError, match="other arguments"):
        build(victim, dataclasses.replace(tiny_cfg, seed=1), log=lambda m: None)


def test_pretraining_corpus_is_scrubbed_of_personal_lines():
    import re

    from leakbench.base import pretraining_corpus

    corpus = "".join(row["text"] for row in pretraining_corpus(200_000))
    assert len(corpus) >= 200_000
    assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", corpus)
    assert "Copyright" not in corpus and "author" not in corpus.lower()


# The toy victim barely memorized (forget loss ~4.7 nats/token): at SimNPO's default beta 4.5 its sigmoid is
# saturated there (no gradient), so the toy runs use beta 0.5.
TOY = {"simnpo": {"beta": 0.5}}


def _leaky_complete(model, tokenizer, prompts, samples, seed):
    """PLUM's sampler for a model that leaks: the greedy completion is the memorized value (as the reference
    victim's mostly is; the toy victim's never is), the other samples a placeholder."""
    value = [site.head + site.doc["text"][site.occurrence["start"] : site.occurrence["end"]] for site in prompts]
    return [[v + "\n", *["changeme\n"] * (samples - 1)] for v in value]


@pytest.fixture(scope="module")
def unlearned(victim, tmp_path_factory):
    from leakbench.unlearn import pairs

    root = tmp_path_factory.mktemp("unlearned")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pairs, "complete", _leaky_complete)
        return {m: unlearn(victim, root / m, UnlearnConfig(method=m, **STEPS, params=TOY.get(m, {})),
                           log=lambda msg: None) for m in METHODS}  # fmt: skip


def test_every_method_writes_a_model_and_its_record(unlearned):
    for method, record in unlearned.items():
        assert record["method"] == method and record["steps"] == 6 and record["seed"] == 0
        assert record["data_release_hash"] and record["wall_time_s"] > 0
        assert record["early_stopping"] is None
        assert record["hyperparameters"]["lr"] == 3e-3
        assert "leakbench sweep" in record["defaults_chosen_by"]
        assert record["distributed"] == {"world_size": 1, "per_device_batch": 4, "global_batch": 4,
                                         "precision": "fp32", "device": "cpu", "distributed": "no"}  # fmt: skip


def test_ga_raises_the_forget_loss(unlearned):
    r = unlearned["ga"]
    assert r["loss_after"]["forget"] > r["loss_before"]["forget"] + 0.2


@pytest.mark.parametrize("method", [m for m in METHODS if m != "ga"])
def test_every_other_method_forgets_while_keeping_retain_loss_nearer_the_start_than_ga(unlearned, method):
    ga_drift = abs(unlearned["ga"]["loss_after"]["retain"] - unlearned["ga"]["loss_before"]["retain"])
    r = unlearned[method]
    # the whole documents' loss (GA family, NPO, RMU) or the sensitive values' (span, DPO, PLUM) goes up
    assert any(r["loss_after"][k] > r["loss_before"][k] for k in ("forget", "values")), method
    assert abs(r["loss_after"]["retain"] - r["loss_before"]["retain"]) < ga_drift, method


def test_preference_methods_make_the_values_less_likely(unlearned):
    for method in ("span", "dpo", "plum", "plum_decoy"):
        r = unlearned[method]
        assert r["loss_after"]["values"] > r["loss_before"]["values"] + 0.05, method


def test_plum_records_its_on_policy_rounds(unlearned):
    rounds = unlearned["plum"]["on_policy_rounds"]
    prompts = unlearned["plum"]["hyperparameters"]["prompts"]
    assert len(rounds) == 2 and all(r["prompts"] == prompts and r["samples"] == prompts * 4 for r in rounds)
    # the greedy completions leak (but where the prompt already holds the value: a repeat is no leak) and each
    # leaking prompt gives one pair; the placeholder is chosen where it parses, the redaction elsewhere
    for r in rounds:
        assert 0.9 * prompts <= r["leaking"] == r["pairs"] and 0 < r["fallback_chosen"] < r["pairs"]
        assert r["fallback"] == "redaction"


def test_undo_records_its_teacher_and_refuses_lora(unlearned, victim, tmp_path):
    from leakbench.records import UsageError

    assert unlearned["undo"]["teacher"] == {"method": "ga_gd", "hyperparameters": METHODS["ga_gd"].defaults}
    with pytest.raises(UsageError, match=r"--lora: UNDO \(unlearn, noise, distill\) changes every weight"):
        unlearn(victim, tmp_path / "u", UnlearnConfig(method="undo", lora=True, **STEPS), log=lambda m: None)
    assert not (tmp_path / "u").exists()


def test_undo_trains_its_teacher_once_per_teachers_folder(victim, tmp_path, monkeypatch):
    """A sweep's grid points differ only in UNDO's own hyper-parameters: the teacher is trained once per seed
    and read back, and the model is the one a run without the folder makes."""
    import torch
    from transformers import AutoModelForCausalLM

    import leakbench.unlearn as unlearn_module

    trained, real_train = [], unlearn_module.train
    monkeypatch.setattr(unlearn_module, "train",
                        lambda t, **kw: trained.append(type(t).__name__) or real_train(t, **kw))  # fmt: skip

    def run(out: str, noise: float, **kw):
        config = UnlearnConfig(method="undo", params={"noise": noise}, **STEPS)
        return unlearn(victim, tmp_path / out, config, log=lambda m: None, **kw)

    first = run("a", 0.3, teachers=tmp_path / "t")
    second = run("b", 0.1, teachers=tmp_path / "t")
    assert trained == ["GAGDTrainer", "UNDOTrainer", "UNDOTrainer"]
    (kept,) = [p for p in (tmp_path / "t").iterdir() if not p.name.startswith(".")]
    teacher = json.loads((kept / "unlearn.json").read_text())  # an ordinary unlearned model, with its record
    assert kept.name.startswith("ga_gd-") and teacher["method"] == "ga_gd" and teacher["seed"] == 0
    assert min(first["wall_time_s"], second["wall_time_s"]) > teacher["wall_time_s"] > 0
    third = run("c", 0.1)  # no folder: the teacher trained again, the same model
    assert trained[-2:] == ["GAGDTrainer", "UNDOTrainer"]
    b, c = (AutoModelForCausalLM.from_pretrained(tmp_path / x).state_dict() for x in ("b", "c"))
    assert all(torch.equal(b[k], c[k]) for k in b)

    # a study reuses the model only while its teacher's recipe is the same: new GA+GD defaults make it stale
    from leakbench.unlearn import reusable_unlearned

    config = UnlearnConfig(method="undo", params={"noise": 0.1}, **STEPS)
    args = third["source_model_label"], config, third["data_release_hash"]
    assert reusable_unlearned(tmp_path / "c", *args) is not None
    monkeypatch.setitem(METHODS["ga_gd"].defaults, "lr", 3e-4)
    assert reusable_unlearned(tmp_path / "c", *args) is None


def test_values_only_and_lora_options(victim, tmp_path):
    r = unlearn(victim, tmp_path / "v", UnlearnConfig(method="ga", values_only=True, **STEPS), log=lambda m: None)
    assert r["hyperparameters"]["values_only"] is True
    assert r["loss_after"]["forget"] > r["loss_before"]["forget"]
    r = unlearn(victim, tmp_path / "l", UnlearnConfig(method="ga_kl", lora=True, **STEPS), log=lambda m: None)
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "l")  # merged: a plain model directory
    assert not (tmp_path / "l" / "adapter_config.json").exists()


# --- bad input --------------------------------------------------------------------------------


def test_unknown_method(victim, tmp_path, capsys):
    rc = main(["unlearn", "--model", str(victim), "--method", "forgetful", "--out", str(tmp_path / "o")])
    assert rc == 2 and "unknown unlearning method(s) 'forgetful'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_not_a_causal_lm(tmp_path, capsys):
    from transformers import BertConfig

    BertConfig(architectures=["BertForMaskedLM"]).save_pretrained(tmp_path / "bert")
    rc = main(["unlearn", "--model", str(tmp_path / "bert"), "--method", "ga", "--out", str(tmp_path / "o")])
    assert rc == 1 and "not a causal language model" in capsys.readouterr().err
    rc = main(["unlearn", "--model", str(tmp_path / "nothing"), "--method", "ga", "--out", str(tmp_path / "o")])
    assert rc == 1 and "not a Hugging Face model directory" in capsys.readouterr().err


def test_a_path_that_holds_no_model_is_refused_before_torch_is_imported(tmp_path):
    """A typo in --model costs a fraction of a second, not the seconds of importing torch and transformers; a name
    that is not a local path is still left to transformers as a hub id."""
    import subprocess
    import sys

    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    code = (
        "import sys; from leakbench.training import check_model_dir; from leakbench.records import LeakBenchError\n"
        "for path, what in ((sys.argv[1] + '/empty', 'no config.json'), (sys.argv[1] + '/file', 'a file'),\n"
        "                   (sys.argv[1] + '/none', 'no such directory'), ('./none', 'no such directory')):\n"
        "    try:\n"
        "        check_model_dir(path)\n"
        "        raise SystemExit(f'{path} passed')\n"
        "    except LeakBenchError as exc:\n"
        "        assert str(exc) == f'{path}: not a Hugging Face model directory ({what})', exc\n"
        "check_model_dir('org/model')  # a hub id\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_forget_set_must_match_the_victims_data(victim, tmp_path, capsys):
    import shutil

    fake = tmp_path / "victim"
    shutil.copytree(victim, fake)
    record = json.loads((fake / "victim.json").read_text())
    record["data_release_hash"] = "0" * 64
    (fake / "victim.json").write_text(json.dumps(record))
    rc = main(["unlearn", "--model", str(fake), "--method", "ga", "--out", str(tmp_path / "o")])
    assert rc == 1 and "was trained on data release 000000000000" in capsys.readouterr().err


def test_an_interrupted_run_leaves_nothing_that_looks_complete(victim, tmp_path, monkeypatch):
    import transformers

    def boom(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    with pytest.raises(KeyboardInterrupt):
        unlearn(victim, tmp_path / "o", UnlearnConfig(method="ga", **STEPS), log=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_base_model_fine_tuning_with_lora_on_a_local_directory(tmp_path, tiny_cfg):
    from transformers import AutoModelForCausalLM

    from leakbench.base import init_model, train_tokenizer
    from leakbench.data import read_table
    from leakbench.training import save_model

    tok = train_tokenizer([d["text"] for d in read_table("retain", subset="mini")], vocab_size=400)
    save_model(init_model(tok, hidden=32, layers=1, heads=2, max_positions=256), tok, tmp_path / "base")
    cfg = dataclasses.replace(tiny_cfg, base=str(tmp_path / "base"), lora=True, epochs=1)
    record = build(tmp_path / "victim", cfg, log=lambda m: None)
    assert record["config"]["base"] == str(tmp_path / "base") and record["config"]["lora"] is True
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "victim")  # LoRA merged: a plain model
    assert model.config.hidden_size == 32 and not (tmp_path / "victim" / "adapter_config.json").exists()


def test_victim_cli_rejects_lora_without_a_base(tmp_path, capsys):
    assert main(["victim", "build", "--out", str(tmp_path / "v"), "--lora"]) == 2
    assert "--lora needs --base" in capsys.readouterr().err


def test_rebuilding_a_victim_gives_the_same_weights(tmp_path, toy_victims):
    """The recipe is deterministic: a second build from scratch gives byte-identical weights (what lets the
    shipped victim and oracle be checked by `leakbench victim build --from-scratch`)."""
    shipped = json.loads((toy_victims["victim"] / "victim.json").read_text())["weights_sha256"]
    record = build(tmp_path / "again", toy_victims["config"], from_scratch=True, log=lambda m: None)
    assert record["weights_sha256"] == shipped
    from leakbench.records import sha256_file

    assert sha256_file(tmp_path / "again" / "model.safetensors") == shipped
    # a folder that kept only its record (git keeps a reference run's records) is built again, to the same bytes
    for path in (tmp_path / "again").iterdir():
        if path.name != "victim.json":
            path.unlink()
    messages: list[str] = []
    assert build(tmp_path / "again", toy_victims["config"], log=messages.append)["weights_sha256"] == shipped
    assert "not its weights: building them again" in messages[0]
    assert sha256_file(tmp_path / "again" / "model.safetensors") == shipped


@pytest.mark.parametrize("label", ["victim", "oracle"])
def test_the_shipped_victim_and_oracle_are_copied_after_their_weights_are_checked(tmp_path, monkeypatch, label):
    import shutil

    from leakbench import victim as victims
    from leakbench.data import release_hash
    from leakbench.records import sha256_file

    cfg = victims.VictimConfig(oracle=label == "oracle")  # the default recipe is the shipped one
    assert victims.prebuilt(cfg, release_hash()) == victims.PREBUILT / label
    assert victims.prebuilt(dataclasses.replace(cfg, seed=1), release_hash()) is None  # another recipe: trained
    messages = []
    record = build(tmp_path / label, cfg, log=messages.append)
    assert any(m.startswith(f"copied the prebuilt {label}") for m in messages)
    assert sha256_file(tmp_path / label / "model.safetensors") == record["weights_sha256"]
    assert record["weights_sha256"] == victims.PREBUILT_SHA256[label]
    damaged = tmp_path / "damaged"
    shutil.copytree(victims.PREBUILT, damaged)
    with open(damaged / label / "model.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    monkeypatch.setattr(victims, "PREBUILT", damaged)
    with pytest.raises(LeakBenchError, match=f"not the released {label} weights"):
        build(tmp_path / f"{label}-2", cfg, log=lambda m: None)
    assert not (tmp_path / f"{label}-2").exists()  # nothing half-written
