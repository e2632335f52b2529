"""Per-word attributions of the label margin, one contract for every model kind.

    from gapscope.attribution import attribute
    att = attribute(model, text, method="occlusion")   # or "shap"
    att.tokens, att.weights, att.margin

Modules: base (contract, registry), words (the word cutter), occlusion (fast),
shap_partition (reference), faithfulness (deletion/insertion AUC, comprehensiveness,
sufficiency), corpus (aggregation per cell x test domain, caching).
"""

from gapscope.attribution.base import Attribution, Attributor, attribute, get_method, methods

__all__ = ["Attribution", "Attributor", "attribute", "get_method", "methods"]
