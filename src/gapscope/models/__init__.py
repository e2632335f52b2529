"""Model kinds behind one interface (fit, score = label margin, hidden states, gradients)."""

from gapscope.models.base import ClassifierModel, ModelSpec, create_model, model_kinds, register_model_kind

__all__ = ["ClassifierModel", "ModelSpec", "create_model", "model_kinds", "register_model_kind"]
