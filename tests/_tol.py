"""Tolerances of the test suite, all derived from float64 machine epsilon."""

from __future__ import annotations

import torch

EPS = torch.finfo(torch.float64).eps
"""Machine epsilon of float64, about 2.2e-16."""

# A few hundred roundings: sums over hidden layers of width <= 64, matrix
# products of size <= 8 and one linear solve.
RTOL = 256 * EPS
ATOL = 256 * EPS

# Eigenvalues of a Gram matrix L Lᵀ are exact to about n * eps * ||L||².
EIG_ATOL = 64 * EPS
