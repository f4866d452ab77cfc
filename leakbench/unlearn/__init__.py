"""Unlearning methods on one shared HF Trainer: the paper's GA, GA+GD, GA+KL; NPO, SimNPO, RMU; span-aware
unlearning (CodeEraser's manner); redaction DPO; PLUM's scorer-verified on-policy preference learning; two
aimed at relearning, UNDO (unlearn, noise, distill) and sharpness-aware NPO; and PLUM with decoys (a same-type
decoy as the chosen side where no sample is clean).

`METHODS` is the registry, readable without torch: each method's trainer class (one file per loss in this package),
its hyper-parameters with their defaults, and the grid `leakbench sweep` chooses the defaults from (on the
validation subjects and code only). Outside packages add methods through the entry-point
group `leakbench.methods` (a `Method` declaration; see `leakbench.registry`). `unlearn()` loads a model, runs
one method on its forget set with retain documents as the counterweight, and writes the model plus
`unlearn.json` atomically; what the method trains on is its trainer's `forget_items` hook.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leakbench.corpus import encode_documents, retain_training_documents
from leakbench.data import check_subset, read_table, release_hash
from leakbench.records import (
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    has_weights,
    model_label,
    model_name,
    provenance,
)
from leakbench.registry import Registry, check_reference, resolve
from leakbench.schemas import UnlearnRecord, check_release, model_record
from leakbench.training import (
    check_model_dir,
    check_precision,
    context_length,
    load_causal_lm,
    save_model,
    train,
    training_arguments,
    with_lora,
    world,
)

RECORD = UnlearnRecord.FILE
ALL = "all"


@dataclass(frozen=True)
class Param:
    """A hyper-parameter's type and range: checked up front, before any model is loaded."""

    kind: type = float
    allow_zero: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    named: tuple[str, ...] = ()  # words a numeric parameter also accepts (RMU's layer: "middle")
    maximum: float | None = None  # a bounded parameter's largest value (UNDO's noise: a mixing weight)

    def parse(self, name: str, value: Any) -> Any:
        option = f"--{name.replace('_', '-')}" if name in OPTIONS else f"--param {name}"
        if value in self.named:
            return value
        if self.choices:
            if value not in self.choices:
                raise UsageError(f"{option}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        if isinstance(value, str):
            try:
                value = float(value) if self.kind is float else int(value)
            except ValueError:
                expected = "an integer" if self.kind is int else "a number"
                raise UsageError(f"{option} must be {expected}, got {value!r}") from None
        check_number(option, value, integer=self.kind is int, allow_zero=self.allow_zero)
        if self.maximum is not None and value > self.maximum:
            raise UsageError(f"{option} must be at most {self.maximum:g}, got {value:g}")
        return value


PARAMS: dict[str, Param] = {
    "steps": Param(int, help="optimizer steps"),
    "lr": Param(help="learning rate"),
    "retain_weight": Param(allow_zero=True, help="weight of the retain term (NLL, KL, or RMU's activation match)"),
    "beta": Param(help="inverse temperature (NPO, SimNPO, DPO)"),
    "margin": Param(allow_zero=True, help="SimNPO's reward margin gamma"),
    "layer": Param(int, allow_zero=True, named=("middle",),
                   help="RMU: the decoder layer whose output is steered (middle: number of layers // 2)"),
    "steering": Param(help="RMU: the norm of the random target activation"),
    "context_weight": Param(allow_zero=True, help="span: weight of language modelling on the non-sensitive context"),
    "forget_loss": Param(str, choices=("npo", "ga"), help="span: the unlearning loss on the value tokens"),
    "rounds": Param(int, help="PLUM: sample -> label -> train rounds"),
    "prompts": Param(int, help="PLUM: forget prefixes sampled per round"),
    "samples": Param(int, help="PLUM: completions sampled per prefix"),
    "teacher": Param(str, choices=("ga_gd", "ga_kl", "npo", "simnpo"),
                     help="UNDO: the method (at its defaults) that unlearns the teacher"),
    "noise": Param(maximum=1.0, help="UNDO: alpha, how far the student is shrunk toward a fresh initialisation"),
    "rho": Param(help="sharpness-aware steps (a method whose loss is forget + retain): the perturbation radius"),
    "fallback": Param(str, choices=("redaction", "decoy"),
                      help="PLUM: the chosen side where no sample is clean (the redaction, or a same-type decoy)"),
}
SHARED = ("steps", "lr", "retain_weight")
GRID_POINTS = 6  # every method's sweep grid: the same number of points (a product over its own hyper-parameters)
OPTIONS = (*SHARED, "beta")  # hyper-parameters with their own command-line option (the rest: --param NAME=VALUE)


@dataclass(frozen=True)
class Method:
    """An unlearning method's declaration: light (no torch), checked when registered.

    `trainer` is a subclass of `leakbench.unlearn.trainer.UnlearningTrainer`, given as "module:Class" (imported
    only when the method runs) or as the class itself; `defaults` holds every hyper-parameter the method reads
    (steps, lr and retain_weight at least) with its default; `params` declares the hyper-parameters that are not
    in `PARAMS` yet (their types and ranges)."""

    trainer: Any  # "module:Class" or the class
    title: str
    defaults: dict[str, Any]  # every hyper-parameter the method reads, with its default
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # what `leakbench sweep` tries
    params: dict[str, Param] = field(default_factory=dict)  # the method's own hyper-parameters (beyond PARAMS)

    def param(self, name: str) -> Param:
        return self.params.get(name) or PARAMS[name]

    def trainer_class(self) -> type:
        """The trainer class (imports it, and torch)."""
        from leakbench.unlearn.trainer import UnlearningTrainer

        cls = resolve(self.trainer, f"the trainer of {self.title}")
        if not (isinstance(cls, type) and issubclass(cls, UnlearningTrainer)):
            raise LeakBenchError(f"the trainer of {self.title} ({self.trainer!r}) is not a subclass of "
                                 "leakbench.unlearn.trainer.UnlearningTrainer")  # fmt: skip
        return cls


def _check_method(name: str, method: Any) -> Method:
    """A declaration fit to run: its hyper-parameters declared, defaults in range, its grid over them."""
    where = f"unlearning method {name!r}"
    if not isinstance(method, Method):
        raise LeakBenchError(f"{where}: expected a leakbench.unlearn.Method declaration, got {type(method).__name__}")
    check_reference(method.trainer, f"{where}: trainer")
    clash = [k for k in method.params if k in PARAMS]
    missing = [k for k in SHARED if k not in method.defaults]
    undeclared = [k for k in method.defaults if k not in method.params and k not in PARAMS]
    for problem, names in (("redeclares the shared hyper-parameter(s)", clash), ("lacks", missing),
                           ("has undeclared hyper-parameter(s) (declare them in `params`)", undeclared),
                           ("has a grid over unknown hyper-parameter(s)", [k for k in method.grid
                                                                           if k not in method.defaults])):  # fmt: skip
        if names:
            raise LeakBenchError(f"{where} {problem}: {', '.join(names)}")
    try:
        for k, v in method.defaults.items():
            method.param(k).parse(k, v)
        for k, values in method.grid.items():
            for v in values:
                method.param(k).parse(k, v)
    except UsageError as exc:
        raise LeakBenchError(f"{where}: a default or grid value out of range ({exc})") from None
    if method.grid and math.prod(len(v) for v in method.grid.values()) != GRID_POINTS:
        raise LeakBenchError(f"{where}: its grid has {math.prod(len(v) for v in method.grid.values())} points; "
                             f"`leakbench sweep` gives every method the same budget, {GRID_POINTS} points")  # fmt: skip
    return method


# Defaults: the point `leakbench sweep` chose for each method on the validation subjects (results/sweep.json: 6 points
# x 3 seeds per method, one rule; a test holds the two together). Retain weight 1 and beta 0.1 are the papers' and
# OpenUnlearning's; SimNPO's beta 4.5 and margin 0 are OpenUnlearning's; RMU's layer (the middle) and its retain
# weight are ours. Where a grid sweeps another strength than lr, lr is fixed, not swept: RMU's and UNDO's 1e-3,
# sharpness-aware NPO's 5e-4 (the lr the sweep chose for NPO).
_U = "leakbench.unlearn."  # the built-in trainers: one module each in this package
_STEPS = (20, 40, 80)  # every built-in grid: the steps times two values of the method's own strength
BUILTIN_METHODS: dict[str, Method] = {
    "ga": Method(_U + "ga:GATrainer", "GA", {"steps": 20, "lr": 1e-4, "retain_weight": 0.0},
                 {"steps": _STEPS, "lr": (1e-4, 3e-4)}),
    "ga_gd": Method(_U + "ga_gd:GAGDTrainer", "GA+GD", {"steps": 80, "lr": 1e-4, "retain_weight": 1.0},
                    {"steps": _STEPS, "lr": (1e-4, 3e-4)}),
    "ga_kl": Method(_U + "ga_kl:GAKLTrainer", "GA+KL", {"steps": 20, "lr": 3e-4, "retain_weight": 1.0},
                    {"steps": _STEPS, "lr": (1e-4, 3e-4)}),
    "npo": Method(_U + "npo:NPOTrainer", "NPO", {"steps": 40, "lr": 5e-4, "retain_weight": 1.0, "beta": 0.1},
                  {"steps": _STEPS, "lr": (5e-4, 1e-3)}),
    "simnpo": Method(_U + "simnpo:SimNPOTrainer", "SimNPO", {"steps": 40, "lr": 5e-4, "retain_weight": 1.0,
                                                            "beta": 4.5, "margin": 0.0},
                     {"steps": _STEPS, "lr": (5e-4, 1e-3)}),
    "rmu": Method(_U + "rmu:RMUTrainer", "RMU", {"steps": 40, "lr": 1e-3, "retain_weight": 10.0, "layer": "middle",
                                                 "steering": 100.0}, {"steps": _STEPS, "steering": (100.0, 200.0)}),
    "span": Method(_U + "span:SpanTrainer", "span-aware (CodeEraser-style)",
                   {"steps": 40, "lr": 1e-3, "retain_weight": 1.0, "beta": 0.1, "context_weight": 1.0,
                    "forget_loss": "npo"}, {"steps": _STEPS, "lr": (5e-4, 1e-3)}),
    "dpo": Method(_U + "dpo:DPOTrainer", "redaction DPO", {"steps": 80, "lr": 3e-4, "retain_weight": 1.0,
                                                          "beta": 0.1}, {"steps": _STEPS, "lr": (3e-4, 1e-3)}),
    "plum": Method(_U + "plum:PLUMTrainer", "PLUM (scorer-verified on-policy DPO)",
                   {"steps": 80, "lr": 3e-4, "retain_weight": 1.0, "beta": 0.1, "rounds": 2, "prompts": 128,
                    "samples": 4, "fallback": "redaction"}, {"steps": _STEPS, "lr": (3e-4, 1e-3)}),
    "plum_decoy": Method(_U + "plum:PLUMTrainer", "PLUM with decoys (a decoy chosen where no sample is clean)",
                         {"steps": 20, "lr": 3e-4, "retain_weight": 1.0, "beta": 0.1, "rounds": 2, "prompts": 128,
                          "samples": 4, "fallback": "decoy"}, {"steps": _STEPS, "lr": (3e-4, 1e-3)}),
    "undo": Method(_U + "undo:UNDOTrainer", "UNDO (unlearn, noise, distill)",
                   {"steps": 80, "lr": 1e-3, "retain_weight": 1.0, "teacher": "ga_gd", "noise": 0.1},
                   {"steps": _STEPS, "noise": (0.1, 0.3)}),
    "sam_npo": Method(_U + "npo:NPOTrainer", "sharpness-aware NPO",
                      {"steps": 40, "lr": 5e-4, "retain_weight": 1.0, "beta": 0.1, "rho": 0.01},
                      {"steps": _STEPS, "rho": (0.01, 0.1)}),
}  # fmt: skip
# the registry: the built-in table, then outside packages' methods (entry-point group `leakbench.methods`)
METHODS: Registry[Method] = Registry("leakbench.methods", "unlearning method", BUILTIN_METHODS, _check_method)
DEFAULTS_CHOSEN_BY = "leakbench sweep on the validation subjects (results/sweep.json)"


def defaults_chosen_by(method: str) -> str:
    """How a method's defaults were chosen: the sweep's for a built-in one, its package's for an outside one."""
    if method not in BUILTIN_METHODS:
        return "the method's package"
    return DEFAULTS_CHOSEN_BY


def expand_methods(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Method names as given, with `all` standing for every registered method; checked."""
    out = tuple(dict.fromkeys(m for name in names for m in (METHODS if name == ALL else (name,))))
    check_methods(out)
    return out


def check_methods(names: tuple[str, ...] | list[str]) -> None:
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        names_ = ", ".join(map(repr, unknown))
        raise UsageError(f"unknown unlearning method(s) {names_}; choose from: {', '.join(METHODS)} (or {ALL})")
    if not names:
        raise UsageError(f"no unlearning method given; choose from: {', '.join(METHODS)} (or {ALL})")


def trainer_class(name: str) -> type:
    """A method's trainer class (imports torch)."""
    check_methods([name])
    return METHODS[name].trainer_class()


FORGETTABLE = ("forget", "validation_forget")  # the release splits a victim is fine-tuned on


@dataclass
class UnlearnConfig:
    method: str
    steps: int | None = None  # None: the method's default
    lr: float | None = None
    retain_weight: float | None = None
    beta: float | None = None  # NPO/SimNPO/DPO inverse temperature; None: the method's default
    params: dict[str, Any] = field(default_factory=dict)  # the method's other hyper-parameters (--param K=V)
    batch_size: int = 8  # the global batch: split over the processes of `accelerate launch`
    values_only: bool = False  # restrict the forget loss to the tokens of the sensitive values
    lora: bool = False
    lora_rank: int = 8
    max_length: int = 512
    seed: int = 0
    subset: str | None = None  # None: the subset the victim memorized
    # None: every forget subject; else only the documents that mention one of these (a deletion request, a
    # smaller forget set: leakbench.robustness)
    subjects: tuple[str, ...] | None = None
    # whose documents are forgotten: the forget subjects, or the validation subjects (the victim memorized both;
    # `leakbench sweep` tunes on the latter, so no default is chosen on a reported subject)
    split: str = "forget"
    precision: str = "fp32"  # or "bf16" (autocast, on a GPU that has it): part of the cache key and the record

    def __post_init__(self) -> None:
        """Every option is checked here, before a model is loaded (no torch needed)."""

        if self.method == ALL:
            raise UsageError(f"--method takes one method, not {ALL!r} (that is for `leakbench run --methods` and "
                             f"`leakbench sweep`); choose one of: {', '.join(METHODS)}")  # fmt: skip
        check_methods([self.method])
        self.hyper()  # unknown or out-of-range hyper-parameters
        check_number("--batch-size", self.batch_size, integer=True)
        check_number("--lora-rank", self.lora_rank, integer=True)
        check_number("--max-length", self.max_length, integer=True)
        check_number("--seed", self.seed, integer=True, allow_zero=True)
        if self.subset is not None:
            check_subset(self.subset)
        if self.subjects is not None:
            self.subjects = tuple(self.subjects)
            if not self.subjects:
                raise UsageError("an empty list of subjects to forget; give at least one (or none: all of them)")
        if self.split not in FORGETTABLE:
            raise UsageError(f"unlearning split {self.split!r}: choose one of {', '.join(FORGETTABLE)} (the subjects "
                             "a victim memorized)")  # fmt: skip
        if self.precision != "fp32":
            check_precision(self.precision)

    def hyper(self) -> dict[str, Any]:
        """The method's hyper-parameters: its defaults, overridden by the options given, each checked."""
        method = METHODS[self.method]
        spec = method.defaults
        given = {**self.params, **{k: v for k in ("steps", "lr", "retain_weight", "beta")
                                   if (v := getattr(self, k)) is not None}}  # fmt: skip
        unknown = [k for k in given if k not in spec]
        if unknown:
            raise UsageError(f"method {self.method} has no hyper-parameter {', '.join(map(repr, unknown))}; "
                             f"its hyper-parameters: {', '.join(spec)}")  # fmt: skip
        return {k: method.param(k).parse(k, given.get(k, default)) for k, default in spec.items()}

    def resolved(self) -> UnlearnConfig:
        """A copy with every hyper-parameter filled in (the record's `hyperparameters`)."""
        hyper = self.hyper()
        out = copy.copy(self)
        out.steps, out.lr, out.retain_weight = hyper["steps"], hyper["lr"], hyper["retain_weight"]
        out.beta = hyper.get("beta")
        out.params = {k: v for k, v in hyper.items() if k not in (*SHARED, "beta")}
        return out


def parse_params(pairs: list[str], option: str = "--param") -> dict[str, str]:
    """`--param NAME=VALUE` options as a dict (values parsed later, against the method's hyper-parameters)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            example = " (e.g. --param margin=0.5)" if option == "--param" else ""
            raise UsageError(f"{option} {pair!r}: expected NAME=VALUE{example}")
        key = name.strip().replace("-", "_")
        if key in out:
            raise UsageError(f"{option} {key} given twice ({out[key]!r} and {value.strip()!r}): give it once")
        out[key] = value.strip()
    return out


def world_size() -> int:
    """Processes in this run (`accelerate launch` / torchrun set WORLD_SIZE), known before any trainer exists."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def _scratch():
    with tempfile.TemporaryDirectory(prefix="leakbench-unlearn-") as tmp:
        yield Path(tmp)


def unlearn(
    model_dir: str | Path,
    out: str | Path,
    config: UnlearnConfig,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    log=print,
    teachers: str | Path | None = None,
) -> dict[str, Any]:
    """Run one unlearning method; returns the record written to OUT/unlearn.json.

    Under `accelerate launch` every process trains (the batch split between them) and the main process alone
    writes OUT. `teachers`: a folder where a method that trains another one first (UNDO's teacher) keeps it, by
    everything it depends on, so runs that differ only in their own hyper-parameters (a sweep's grid) train it
    once."""
    cfg = config.resolved()
    hyper = cfg.hyper()
    processes = world_size()
    if cfg.batch_size % processes:
        raise UsageError(f"--batch-size {cfg.batch_size} (the global batch) must be a multiple of the {processes} "
                         "processes")  # fmt: skip
    check_not_aliased("--out", out, {"--model": model_dir, "--data-dir": data_dir})
    record = model_record(model_dir)
    data_hash = release_hash(data_dir=data_dir) if data_dir else release_hash()
    check_release(record, data_hash, model_dir)
    subset = cfg.subset or record.get("subset", "mini")
    main = is_main_process()
    with atomic_dir(out, overwrite=overwrite) if main else _scratch() as tmp:  # OUT is checked before training
        check_model_dir(model_dir)
        # torch and the trainers only now: a bad argument above fails in a second, not after their import
        from leakbench.unlearn.pairs import PROMPT_TOKENS
        from leakbench.unlearn.trainer import ForgetSource, UnlearningCollator

        trainer_cls = trainer_class(cfg.method)
        if cfg.lora and not trainer_cls.supports_lora:
            raise UsageError(f"--lora: {METHODS[cfg.method].title} changes every weight of the model; run it without "
                             "--lora")  # fmt: skip
        if hyper.get("rho") and not trainer_cls.splits_its_loss():
            raise LeakBenchError(f"method {cfg.method}: `rho` (sharpness-aware steps) needs a trainer whose loss is "
                                 f"forget_loss + retain_loss; {trainer_cls.__name__} overrides unlearning_loss")
        model, tokenizer = load_causal_lm(model_dir)
        forget_docs = requested_documents(read_table("forget", subset=subset, data_dir=data_dir, split=cfg.split),
                                          cfg.subjects)
        max_length = min(cfg.max_length, context_length(model, cfg.max_length))  # GPT-2-style short limits
        max_prompt = min(PROMPT_TOKENS, max_length // 2)  # preference prompts leave room for their completions
        forget = encode_documents(tokenizer, forget_docs, max_length=max_length)
        retain = encode_documents(tokenizer, retain_training_documents(subset, data_dir), max_length=max_length)
        ref_model = None
        if cfg.lora:
            model = with_lora(model, cfg.lora_rank)  # the reference is the model with its adapters off
        elif trainer_cls.needs_reference:
            ref_model = copy.deepcopy(model)
        trainer_cls.prepare(model, hyper)
        collator = UnlearningCollator(tokenizer.pad_token_id, cfg.values_only)
        before = forget_retain_loss(model, forget, retain, collator)
        rounds = hyper.get("rounds", 1)

        def train_method(name: str, target) -> float:
            """Another method at its defaults (this run's seed, batch and data) on `target`, in place; returns the
            wall time of its training. With `teachers`, the method's model is an ordinary unlearned model there
            (its own unlearn.json), reused while its record matches and read back into `target`."""
            other = UnlearnConfig(name, batch_size=cfg.batch_size, values_only=cfg.values_only,
                                  max_length=cfg.max_length, seed=cfg.seed, subset=subset, split=cfg.split,
                                  subjects=cfg.subjects, precision=cfg.precision).resolved()  # fmt: skip
            if teachers is None:
                other_cls, other_hyper = trainer_class(name), other.hyper()
                other_cls.prepare(target, other_hyper)
                reference = copy.deepcopy(target) if other_cls.needs_reference else None
                return train(_trainer(other_cls, target, reference, forget, retain, collator, other, other_hyper,
                                      other.steps, cfg.seed, tmp / "_trainer"))  # fmt: skip
            key = json.dumps([model_label(model_dir), data_hash, recorded_hyperparameters(other)], sort_keys=True)
            kept = Path(teachers) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
            found = reusable_unlearned(kept, model_label(model_dir), other, data_hash) if has_weights(kept) else None
            if found is None:  # two runs at once may both train it: the same weights, the last one kept
                found = unlearn(model_dir, kept, other, data_dir=data_dir, overwrite=True, log=lambda _: None)
            target.load_state_dict(type(target).from_pretrained(kept).state_dict())
            return found["wall_time_s"]

        source = ForgetSource(method=cfg.method, model=model, tokenizer=tokenizer, documents=forget_docs,
                              encoded=forget, hyper=hyper, seed=cfg.seed, max_prompt=max_prompt, subset=subset,
                              split=cfg.split, data_dir=data_dir, log=log, train_method=train_method)  # fmt: skip
        wall, trainer = 0.0, None
        for r in range(rounds):
            items = trainer_cls.forget_items(source, r)  # the method's own: documents, pairs, on-policy pairs
            if items is None:  # the method has nothing left to train on
                break
            steps = cfg.steps // rounds + (r < cfg.steps % rounds)
            reference = source.reference if source.reference is not None else ref_model
            trainer = _trainer(trainer_cls, model, reference, items, retain, collator, cfg, hyper, steps, cfg.seed + r,
                               tmp / "_trainer")  # fmt: skip
            wall += train(trainer)
        wall += source.wall_time_s
        after = forget_retain_loss(model, forget, retain, collator)
        result = provenance(
            kind="unlearn",
            method=cfg.method,
            hyperparameters={**{k: v for k, v in asdict(cfg).items() if k not in ("method", "params", "beta")},
                             **hyper},
            defaults_chosen_by=defaults_chosen_by(cfg.method),
            steps=cfg.steps,
            wall_time_s=round(wall, 2),
            seed=cfg.seed,
            subset=subset,
            data_release_hash=data_hash,
            source_model=model_name(model_dir),
            source_model_label=model_label(model_dir),
            victim=record.get("victim", record),
            distributed=world(trainer) if trainer is not None else None,
            early_stopping=None,  # none: every run takes its full step budget
            loss_before=before,
            loss_after=after,
            **source.record,  # what the method adds (PLUM: its on-policy rounds)
        )
        if main:
            save_model(model, tokenizer, tmp, scratch=tmp / "_trainer")
            UnlearnRecord.parse(result, f"{out}/{RECORD}").write(tmp)
    if trainer is not None:
        trainer.accelerator.wait_for_everyone()
    log(f"{cfg.method}: forget loss {before['forget']:.3f} -> {after['forget']:.3f}, values "
        f"{before['values']:.3f} -> {after['values']:.3f}, retain {before['retain']:.3f} -> {after['retain']:.3f} "
        f"({wall:.1f}s)")  # fmt: skip
    return result


def requested_documents(docs: list[dict[str, Any]], subjects: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The forget documents of the requested subjects (every one for None): those that mention any of them."""
    if subjects is None:
        return docs
    known = {s for d in docs for s in d["subject_ids"]}
    unknown = sorted(set(subjects) - known)
    if unknown:
        raise UsageError(f"subjects {', '.join(unknown[:5])} are not forget subjects of this subset")
    wanted = set(subjects)
    return [d for d in docs if wanted.intersection(d["subject_ids"])]


def _trainer(trainer_cls, model, ref_model, items, retain, collator, cfg, hyper, steps, seed, scratch):
    """One trainer over `items` (documents or pairs) for `steps` steps of the global batch."""
    from leakbench.unlearn.trainer import PairedDataset

    args = training_arguments(str(scratch), steps=steps, batch_size=cfg.batch_size // world_size(), lr=cfg.lr,
                              seed=seed, precision=cfg.precision, lr_scheduler_type="constant",
                              warmup_steps=0)  # fmt: skip
    dataset = PairedDataset(items, retain, steps * cfg.batch_size, seed)
    return trainer_cls(model=model, args=args, train_dataset=dataset, data_collator=collator, ref_model=ref_model,
                       hyper=hyper)  # fmt: skip


def forget_retain_loss(model, forget, retain, collator, batch_size: int = 16) -> dict[str, float]:
    """Mean token NLL of the forget documents (the tokens the method trains on: all, or the sensitive values with
    values_only), of the sensitive-value tokens alone (what leaks), and of the retain documents."""
    import torch

    from leakbench.unlearn.trainer import token_logprobs

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = {"forget": [0.0, 0], "values": [0.0, 0], "retain": [0.0, 0]}
    with torch.no_grad():
        for side, items in (("forget", forget), ("retain", retain)):
            for i in range(0, len(items), batch_size):
                chunk = items[i : i + batch_size]
                batch = {k: v.to(device) for k, v in collator(list(zip(chunk, chunk, strict=True)))[side].items()}
                picked, mask, _ = token_logprobs(model, batch)
                sums[side][0] += float(-picked.sum())
                sums[side][1] += int(mask.sum())
                if side == "forget":  # the same pass, counted again on the value tokens alone
                    values = mask & batch["value_mask"][:, 1:]
                    sums["values"][0] += float(-(picked * values).sum())
                    sums["values"][1] += int(values.sum())
    model.train(was_training)
    return {name: total / max(count, 1) for name, (total, count) in sums.items()}


def recorded_hyperparameters(cfg: UnlearnConfig) -> dict[str, Any]:
    """The hyper-parameters `unlearn.json` records for `cfg` (as JSON reads them back)."""
    chosen = {**{k: v for k, v in asdict(cfg).items() if k not in ("method", "params", "beta")}, **cfg.hyper()}
    return json.loads(json.dumps(chosen))


def reusable_unlearned(out: str | Path, source_label: str | None, cfg: UnlearnConfig, data_hash: str
                       ) -> dict[str, Any] | None:  # fmt: skip
    """The record of an unlearned model in `out` made from the model labelled `source_label`
    (`records.model_label`) with exactly `cfg` on the release `data_hash` (the study reuses it), or None when there
    is none or it was made otherwise. Its weights may be gone (`records.has_weights`): git keeps a reference run's
    records only."""
    try:
        found = UnlearnRecord.find(out)
    except LeakBenchError:
        return None  # a damaged record: made again
    if found is None or source_label is None:
        return None
    same = (found.method == cfg.method and found.seed == cfg.seed and found.data_release_hash == data_hash
            and found.hyperparameters == recorded_hyperparameters(cfg)
            and found.source_model_label is not None and found.source_model_label == source_label
            and (found.model_extra or {}).get("teacher") == teacher_of(cfg.hyper()))  # fmt: skip
    return found.dump() if same else None


def teacher_of(hyper: dict[str, Any]) -> dict[str, Any] | None:
    """What a model distilled from a teacher (UNDO's `teacher`) depends on beyond its own hyper-parameters: the
    teacher's method and its defaults, as its record keeps them (None for every other method)."""
    name = hyper.get("teacher")
    return None if name is None else json.loads(json.dumps({"method": name, "hyperparameters": METHODS[name].defaults}))
