"""Inside the model: activations, probes, logit lens, attention, patching and similarity,
over any Hugging Face decoder or encoder, through forward hooks (see hooks.py for the
activation names). The detector that runs them over a study is gapscope.detectors.internals.
"""
