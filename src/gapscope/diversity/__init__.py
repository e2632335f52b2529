"""Training-data diversity per cell (embedding Vendi, gradient Vendi, lexical) and its
relation to out-of-domain F1."""

from gapscope.diversity.analysis import CellDiversity, DiversityOptions, analyse, measure_sets, spearman
from gapscope.diversity.lexical import lexical_diversity
from gapscope.diversity.vendi import vendi_from_kernel, vendi_score

__all__ = ["CellDiversity", "DiversityOptions", "analyse", "lexical_diversity", "measure_sets", "spearman",
           "vendi_from_kernel", "vendi_score"]
