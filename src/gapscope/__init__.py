"""gapscope: diagnose why fine-tuned LLM classifiers fail to generalize across domains."""

__version__ = "0.7.2"
