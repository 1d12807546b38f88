"""The abc-parameterization algebra (Everett et al. 2024): tables, the exponent LP, transfer, symmetry, epsilon.

Pure functions of their arguments over numpy and scipy; no JAX, no statistics, no API envelopes.
"""

from abcscale.theory._core import *  # noqa: F401,F403  (split by concept below)
