"""SentryFuse: modality-aware zero-shot pruning and sparse attention for multimodal models."""

__version__ = "0.1.0"
