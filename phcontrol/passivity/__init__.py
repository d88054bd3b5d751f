"""Passivity verification of LTI systems and pH models.

``check_passivity`` decides passive / not passive / undecided with a storage
that is re-checked by numpy; ``passivity_indices`` and ``enforce_passivity``
build on the same LMIs; certificates of learned models are written and
re-checked by ``write_certificate`` and ``verify_certificate``.
"""

from ._certificate import ModelCertificate as ModelCertificate
from ._certificate import verify_certificate as verify_certificate
from ._certificate import write_certificate as write_certificate
from ._check import PassivityResult as PassivityResult
from ._check import check_passivity as check_passivity
from ._enforce import EnforcementResult as EnforcementResult
from ._enforce import enforce_passivity as enforce_passivity
from ._hamiltonian_test import FrequencySweep as FrequencySweep
from ._hamiltonian_test import frequency_sweep as frequency_sweep
from ._hamiltonian_test import plot_frequency_sweep as plot_frequency_sweep
from ._indices import PassivityIndex as PassivityIndex
from ._indices import PassivityIndices as PassivityIndices
from ._indices import passivity_indices as passivity_indices

__all__ = [
    "EnforcementResult",
    "FrequencySweep",
    "ModelCertificate",
    "PassivityIndex",
    "PassivityIndices",
    "PassivityResult",
    "check_passivity",
    "enforce_passivity",
    "frequency_sweep",
    "passivity_indices",
    "plot_frequency_sweep",
    "verify_certificate",
    "write_certificate",
]
