"""Session settings shared by every test: float64 by default and fixed seeds."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

torch.set_default_dtype(torch.float64)


@pytest.fixture(autouse=True)
def _fixed_seeds() -> Iterator[None]:
    """Seed torch and numpy before each test and restore the default dtype after."""
    torch.manual_seed(0)
    np.random.seed(0)
    yield
    torch.set_default_dtype(torch.float64)


# The suite's tensors are small: a second intra-op thread only adds overhead.
torch.set_num_threads(1)
