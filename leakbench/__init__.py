"""LeakBench: personal-information and secret leakage in code language models, and unlearning against it."""

__version__ = "0.1.0"
