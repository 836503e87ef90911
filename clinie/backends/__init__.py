"""Inference backends: one interface, two implementations (in-process PyTorch, Triton)."""

from clinie.backends.base import InferenceBackend

__all__ = ["InferenceBackend"]
