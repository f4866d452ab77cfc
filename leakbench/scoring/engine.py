"""The Presidio analyzer behind the scorer: built once per process, fully offline.

The NLP engine is chosen by `scorers/analyzer.yaml` (or LEAKBENCH_NER): the first installed spaCy model,
else Presidio's pattern-only engine. Custom secret recognizers come from `scorers/recognizers.yaml`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from leakbench.records import LeakBenchError
from leakbench.resources import resource_dir

# Set only while the engine is built, and restored afterwards (nothing is configured at import time):
# tldextract (Presidio's e-mail recognizer) would fetch the public-suffix list; with no URLs it uses the
# snapshot it ships. With torch installed, spaCy may otherwise initialise CUDA.
_BUILD_ENV = {"TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "", "PRESIDIO_DEVICE": "cpu"}

PATTERN_ONLY = "none"


@dataclass(frozen=True)
class Engine:
    analyzer: Any  # presidio_analyzer.AnalyzerEngine
    ner_model: str  # the spaCy model, or "none" for the pattern-only engine
    batch_size: int

    def analyze(self, text: str, entities: list[str], min_score: float) -> list[Any]:
        return self.analyzer.analyze(text=text, language="en", entities=entities, score_threshold=min_score)

    def analyze_batch(self, texts: list[str], entities: list[str], min_score: float) -> list[list[Any]]:
        """Many texts at once: the NLP engine processes them with spaCy's nlp.pipe."""
        from presidio_analyzer import BatchAnalyzerEngine

        return BatchAnalyzerEngine(self.analyzer).analyze_iterator(
            texts, language="en", batch_size=self.batch_size, entities=entities, score_threshold=min_score
        )


def _config() -> dict[str, Any]:
    return yaml.safe_load((resource_dir("scorers") / "analyzer.yaml").read_text(encoding="utf-8"))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing, or a relative name
        return False


def choose_ner_model(requested: str | None = None) -> str:
    """The spaCy model to use: `requested`, else LEAKBENCH_NER, else the first installed in the config."""
    requested = requested or os.environ.get("LEAKBENCH_NER")
    if requested:
        if requested != PATTERN_ONLY and not _installed(requested):
            raise LeakBenchError(
                f"spaCy model {requested!r} is not installed; install it, or use LEAKBENCH_NER=none for the "
                "pattern-only engine"
            )
        return requested
    for model in _config().get("models", []):
        if _installed(model):
            return model
    return PATTERN_ONLY


@contextlib.contextmanager
def _environment(defaults: dict[str, str]) -> Iterator[None]:
    """`defaults` for variables the user has not set, for the duration of the block only."""
    added = {k: v for k, v in defaults.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@cache
def get_engine(ner_model: str | None = None) -> Engine:
    """The process-wide analyzer for `ner_model` (see choose_ner_model); built on first use."""
    model = choose_ner_model(ner_model)
    with _environment(_BUILD_ENV):
        return _build_engine(model, _config())


def _build_engine(model: str, config: dict[str, Any]) -> Engine:
    import tldextract.tldextract as tld

    if tld.TLD_EXTRACTOR.suffix_list_urls:  # imported before us with the network list: an offline one instead
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=())

    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer
    from presidio_analyzer.recognizer_registry import RecognizerRegistryProvider

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    if model == PATTERN_ONLY:
        nlp_configuration = {"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "no_op"}]}
    else:
        nlp_configuration = {
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
            "ner_model_configuration": config["ner_model_configuration"],
        }
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration).create_engine()
    if model != PATTERN_ONLY:
        for pipe in config.get("disabled_pipes", []):
            if pipe in nlp_engine.nlp["en"].pipe_names:
                nlp_engine.nlp["en"].disable_pipe(pipe)
    scorers = resource_dir("scorers")
    registry = RecognizerRegistryProvider(conf_file=scorers / "registry.yaml").create_recognizer_registry()
    registry.add_nlp_recognizer(nlp_engine)
    registry.add_recognizer(PhoneRecognizer(supported_regions=tuple(config.get("phone_regions", ["US"]))))
    registry.add_recognizers_from_yaml(scorers / "recognizers.yaml")
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    return Engine(analyzer, model, int(config.get("batch_size", 32)))
