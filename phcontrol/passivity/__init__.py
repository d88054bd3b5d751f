"""Passivity verification of LTI systems and pH models.

``check_passivity`` decides passive / not passive / undecided with a storage
that is re-checked by numpy; ``passivity_indices`` and ``enforce_passivity``
build on the same LMIs; certificates of learned models are written and
re-checked by ``write_certificate`` and ``verify_certificate``.
"""

from ._check import PassivityResult as PassivityResult
from ._check import check_passivity as check_passivity
from ._hamiltonian_test import FrequencySweep as FrequencySweep
from ._hamiltonian_test import frequency_sweep as frequency_sweep
from ._hamiltonian_test import plot_frequency_sweep as plot_frequency_sweep

__all__ = [
    "FrequencySweep",
    "PassivityResult",
    "check_passivity",
    "frequency_sweep",
    "plot_frequency_sweep",
]
