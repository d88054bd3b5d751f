r"""Linear port-Hamiltonian models and their state-space form.

A linear pH model with feedthrough,

.. math::

    \dot x = (J - R) Q x + (G - K) u, \qquad y = (G + K)^\top Q x + (S + N) u,

so ``A = (J - R) Q``, ``B = G - K``, ``C = (G + K)^T Q``, ``D = S + N``, with
``J`` and ``N`` skew, ``Q`` positive definite and
``[[R, K], [K^T, S]]`` positive semidefinite. It is passive with storage
``x^T Q x / 2``. :class:`~phcontrol.PortHamiltonian` has no feedthrough;
:class:`LinearPortHamiltonian` holds the general case as plain matrices.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import NotSupportedError, NumericsError, NumericsWarning, ShapeError
from .passivity._lti import LTI, as_lti, make_lti

__all__ = [
    "LinearPortHamiltonian",
    "to_state_space",
    "from_state_space",
]


@dataclass(frozen=True)
class LinearPortHamiltonian:
    """A linear pH model with feedthrough, as numpy matrices.

    Attributes
    ----------
    J, R, Q : ndarray, shape (n_states, n_states)
        Skew interconnection, dissipation, energy matrix (``H = x^T Q x / 2``).
    G, K : ndarray, shape (n_states, n_inputs)
        Port matrix and its feedthrough coupling.
    S, N : ndarray, shape (n_inputs, n_inputs)
        Symmetric and skew parts of the feedthrough ``D = S + N``.

    Examples
    --------
    >>> import numpy as np
    >>> lph = LinearPortHamiltonian.from_matrices(
    ...     J=[[0.0]], R=[[1.0]], Q=[[2.0]], G=[[1.0]])
    >>> lph.to_state_space().A
    array([[-2.]])
    """

    J: np.ndarray
    R: np.ndarray
    Q: np.ndarray
    G: np.ndarray
    K: np.ndarray
    S: np.ndarray
    N: np.ndarray

    @classmethod
    def from_matrices(
        cls,
        J: Any,
        R: Any,
        Q: Any,
        G: Any,
        K: Any = None,
        S: Any = None,
        N: Any = None,
    ) -> LinearPortHamiltonian:
        """Build from array-likes, with zero feedthrough parts by default.

        Parameters
        ----------
        J, R, Q : array_like, shape (n_states, n_states)
            Interconnection, dissipation and energy matrices.
        G : array_like, shape (n_states, n_inputs)
            Port matrix.
        K : array_like, shape (n_states, n_inputs), optional
            Feedthrough coupling (default zero).
        S, N : array_like, shape (n_inputs, n_inputs), optional
            Symmetric and skew feedthrough (default zero).

        Returns
        -------
        LinearPortHamiltonian
        """
        J, R, Q, G = (np.atleast_2d(np.asarray(M, dtype=float)) for M in (J, R, Q, G))
        n, m = G.shape
        K = np.zeros((n, m)) if K is None else np.atleast_2d(np.asarray(K, float))
        S = np.zeros((m, m)) if S is None else np.atleast_2d(np.asarray(S, float))
        N = np.zeros((m, m)) if N is None else np.atleast_2d(np.asarray(N, float))
        for name, M, shape in (
            ("J", J, (n, n)),
            ("R", R, (n, n)),
            ("Q", Q, (n, n)),
            ("K", K, (n, m)),
            ("S", S, (m, m)),
            ("N", N, (m, m)),
        ):
            if M.shape != shape:
                raise ShapeError(
                    f"`{name}` must have shape {shape} to match `G` {G.shape}; "
                    f"found {M.shape}"
                )
        return cls(J, R, Q, G, K, S, N)

    @property
    def n_states(self) -> int:
        """Number of states."""
        return self.Q.shape[0]

    @property
    def n_inputs(self) -> int:
        """Number of inputs (= port outputs)."""
        return self.G.shape[1]

    def lti(self) -> LTI:
        """Return ``(A, B, C, D)`` as the passivity checks' LTI container."""
        A = (self.J - self.R) @ self.Q
        B = self.G - self.K
        C = (self.G + self.K).T @ self.Q
        return make_lti(A, B, C, self.S + self.N, 0.0)

    def to_state_space(self) -> Any:
        """Return the model as a continuous-time ``control.StateSpace``."""
        import control

        s = self.lti()
        return control.ss(s.A, s.B, s.C, s.D)

    def dissipation_block(self) -> np.ndarray:
        """Return ``[[R, K], [K^T, S]]``, positive semidefinite for a pH model."""
        return np.block([[self.R, self.K], [self.K.T, self.S]])

    def to_model(self) -> Any:
        """Return a :class:`~phcontrol.PortHamiltonian` (no feedthrough only).

        Raises
        ------
        NotSupportedError
            If ``K``, ``S`` or ``N`` is non-zero: PortHamiltonian has no
            feedthrough; keep the LinearPortHamiltonian instead.
        """
        from .hamiltonians import QuadraticHamiltonian
        from .models import PortHamiltonian
        from .structure import CholeskyDissipation, InputMatrix, SkewSymmetric

        if np.any(self.K) or np.any(self.S) or np.any(self.N):
            raise NotSupportedError(
                "PortHamiltonian has no feedthrough, but K, S or N is non-zero; "
                "use the LinearPortHamiltonian itself (to_state_space, "
                "check_passivity accept it)"
            )
        n, m = self.n_states, self.n_inputs
        t = torch.float64
        H = QuadraticHamiltonian(n, Q=torch.as_tensor(self.Q, dtype=t), eps=0.0)
        J = SkewSymmetric(n, init=torch.as_tensor(0.5 * self.J, dtype=t))
        R = CholeskyDissipation(n)
        with torch.no_grad():
            R.L.copy_(torch.as_tensor(_lower_factor(self.R), dtype=R.L.dtype))
        G = InputMatrix(n, m, init=torch.as_tensor(self.G, dtype=t))
        return PortHamiltonian(H, J, R, G)

    @classmethod
    def from_model(cls, model: Any) -> LinearPortHamiltonian:
        """Read the constant ``Q, J, R, G`` of a linear :class:`PortHamiltonian`."""
        if not is_linear_model(model):
            raise NotSupportedError(
                "the model is not linear (H must be a QuadraticHamiltonian and J, R, "
                "G constant); use to_state_space(model, x_eq=...) to linearise it"
            )
        with torch.no_grad():
            x = model.H.x0.detach().reshape(1, -1)
            Q = model.H.Q.detach().double().numpy()
            J = model.J_matrix(x)[0].double().numpy()
            R = model.R_matrix(x)[0].double().numpy()
            G = model.G_matrix(x)[0].double().numpy()
        return cls.from_matrices(J, R, Q, G)


def _lower_factor(R: np.ndarray) -> np.ndarray:
    """A lower-triangular ``L`` with ``L L^T = R`` for a semidefinite ``R``."""
    w, V = np.linalg.eigh(0.5 * (R + R.T))
    F = V * np.sqrt(np.clip(w, 0.0, None))
    _, upper = np.linalg.qr(F.T)
    return upper.T


def is_linear_model(model: Any) -> bool:
    """True for a PortHamiltonian with quadratic H and constant J, R, G."""
    from .hamiltonians import QuadraticHamiltonian

    parts = [model.J, model.R, model.G]
    return isinstance(model.H, QuadraticHamiltonian) and all(
        p is None or not getattr(p, "state_dependent", True) for p in parts
    )


def minimise_energy(model: Any, x0: np.ndarray | None = None) -> np.ndarray:
    """Return a numerical minimiser of the model's ``H``.

    L-BFGS from ``x0`` (default zero) on a float64 copy of ``H``, then a few
    Newton steps with the autograd Hessian.
    """
    import copy

    from .hamiltonians import QuadraticHamiltonian

    if isinstance(model.H, QuadraticHamiltonian):
        return model.H.x0.detach().double().numpy().copy()
    H = copy.deepcopy(model.H).double()
    start = np.zeros(model.n_states) if x0 is None else np.asarray(x0, dtype=float)
    x = torch.tensor(start, dtype=torch.float64).reshape(1, -1).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=500, tolerance_grad=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = H(x).sum()
        value.backward()
        return value

    opt.step(closure)
    z = x.detach().reshape(-1)
    for _ in range(5):
        g = H.grad(z.reshape(1, -1)).detach().reshape(-1)
        hess = torch.autograd.functional.hessian(lambda v: H(v.reshape(1, -1)).sum(), z)
        try:
            step = torch.linalg.solve(hess, g)
        except torch.linalg.LinAlgError:
            break
        z = z - step
    return z.numpy().copy()


def to_state_space(model: Any, x_eq: Any = None, *, tol: float | None = None) -> Any:
    r"""Return the (linearised) state-space form of a pH model.

    Parameters
    ----------
    model : LinearPortHamiltonian or PortHamiltonian
        A linear pH model, or a learned model to linearise.
    x_eq : array_like, shape (n_states,), optional
        Equilibrium (with ``u = 0``) to linearise at; default the minimiser of
        ``H`` (``x0`` of a quadratic energy, found numerically otherwise).
    tol : float, optional
        Largest accepted ``|f(x_eq, 0)|`` relative to ``1 + |x_eq|`` (default
        ``10 sqrt(eps)`` of the model's dtype).

    Returns
    -------
    control.StateSpace
        Continuous time; ``A = df/dx``, ``B = df/du``, ``C = dy/dx``,
        ``D = dy/du`` at ``(x_eq, 0)`` (torch autograd Jacobians).

    Raises
    ------
    ValueError
        If ``x_eq`` is not an equilibrium of the unforced model.

    Examples
    --------
    >>> import torch, phcontrol as phc
    >>> model = phc.PortHamiltonian(
    ...     H=phc.QuadraticHamiltonian(2), J=phc.CanonicalJ(2),
    ...     R=phc.CholeskyDissipation(2, mask=[False, True], init_scale=1.0),
    ...     G=phc.InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]])))
    >>> sys = to_state_space(model)
    >>> sys.A.round(4)
    array([[ 0.,  1.],
           [-1., -1.]])
    """
    import control

    if isinstance(model, LinearPortHamiltonian):
        return model.to_state_space()
    from .models import PortHamiltonian

    if not isinstance(model, PortHamiltonian):
        raise TypeError(
            "`model` must be a LinearPortHamiltonian or a PortHamiltonian; got "
            f"{type(model).__name__}"
        )
    if x_eq is None:
        x_eq = minimise_energy(model)
    dtype = next(iter(model.parameters())).dtype
    x = torch.as_tensor(np.asarray(x_eq, dtype=float), dtype=dtype).reshape(-1)
    if x.shape != (model.n_states,):
        raise ShapeError(
            f"`x_eq` must have shape ({model.n_states},); found {tuple(x.shape)}"
        )
    u = torch.zeros(model.n_inputs, dtype=dtype)

    def f(xx: torch.Tensor, uu: torch.Tensor) -> torch.Tensor:
        return model.vector_field(xx.unsqueeze(0), uu.unsqueeze(0))[0]

    def y(xx: torch.Tensor, uu: torch.Tensor) -> torch.Tensor:
        return model.output(xx.unsqueeze(0))[0] + 0.0 * uu.sum()

    if tol is None:
        tol = 10.0 * math.sqrt(torch.finfo(dtype).eps)
    with torch.no_grad():
        drift = float(f(x, u).abs().max())
    if drift > tol * (1.0 + float(x.abs().max())):
        raise ValueError(
            f"`x_eq` must be an equilibrium (f(x_eq, 0) = 0); |f| = {drift:.3g}. "
            "Pass the minimiser of H (the default) or solve f(x, 0) = 0 first"
        )
    jac = torch.autograd.functional.jacobian
    A, B = (M.detach().double().numpy() for M in jac(f, (x, u)))
    C, D = (M.detach().double().numpy() for M in jac(y, (x, u)))
    return control.ss(A, B.reshape(-1, model.n_inputs), C, D.reshape(C.shape[0], -1))


COND_WARN = 1e6
"""Condition number of ``P`` above which :func:`from_state_space` warns: the
pH form is built with ``P^{-1}`` and keeps fewer than ten digits."""


def from_state_space(
    sys: Any, *, min_margin: float = 1e-8, strict: bool = False, **check_options: Any
) -> LinearPortHamiltonian:
    r"""Write a passive state-space model in port-Hamiltonian form.

    Parameters
    ----------
    sys : control.StateSpace or tuple
        A square, continuous-time, passive system.
    min_margin : float, default 1e-8
        Smallest accepted ``lambda_min(P) / ||P||`` of the storage.
    strict : bool, default False
        Raise instead of warning when ``P`` is ill-conditioned (condition
        number above ``COND_WARN``) or the solver's status is not clean.
    **check_options
        Passed to :func:`~phcontrol.check_passivity` (``method``, ``solver``).

    Returns
    -------
    LinearPortHamiltonian
        ``Q = P`` (the certificate), ``J - R = A P^{-1}``,
        ``G = (B + P^{-1} C^T) / 2``, ``K = (P^{-1} C^T - B) / 2``,
        ``S``, ``N`` the symmetric and skew parts of ``D``.

    Raises
    ------
    ValueError
        If the system is not passive (enforce it first with
        :func:`~phcontrol.enforce_passivity`) or its storage is singular
        (a non-minimal realisation: reduce it with ``control.minreal``).
    NotSupportedError
        For a discrete-time system.
    NumericsError
        With ``strict=True``, if ``P`` is ill-conditioned.

    Warns
    -----
    NumericsWarning
        If the condition number of ``P`` exceeds ``COND_WARN`` (1e6): the
        pH matrices then carry an error of about ``cond(P) * eps``
        relative to their norm.

    Examples
    --------
    >>> import control
    >>> lph = from_state_space(control.ss([[-1.0]], [[1.0]], [[1.0]], [[0.0]]))
    >>> lph.Q.round(6), lph.R.round(6)
    (array([[1.]]), array([[1.]]))
    """
    from .passivity._check import check_passivity

    lti = as_lti(sys)
    if lti.discrete:
        raise NotSupportedError(
            "from_state_space needs a continuous-time system; convert it with "
            "control.d2c or keep it as a StateSpace"
        )
    res = check_passivity(lti_tuple(lti), strict=strict, **check_options)
    if res.verdict != "passive" or res.P is None:
        raise ValueError(
            f"`sys` must be passive to have a pH form; the check says "
            f"{res.verdict}: {res.message}. Use enforce_passivity first"
        )
    P = res.P
    lam = np.linalg.eigvalsh(P)
    if not lam[0] > min_margin * lam[-1]:
        raise ValueError(
            f"`sys` has a singular storage (lambda_min(P)/||P|| = "
            f"{lam[0] / max(lam[-1], 1e-300):.2g} < {min_margin:g}): the "
            "realisation is not minimal. Reduce it first with control.minreal(sys)"
        )
    cond = float(lam[-1] / lam[0])
    if cond > COND_WARN:
        text = (
            f"the storage P of `sys` is ill-conditioned (condition number "
            f"{cond:.2g} > {COND_WARN:g}); the pH form is computed with P^-1 and "
            f"loses about {math.log10(cond):.0f} digits. Rescale the states "
            "(control.similarity_transform) or reduce the model with "
            "control.minreal"
        )
        if strict:
            raise NumericsError(text)
        warnings.warn(text, NumericsWarning, stacklevel=2)
    Pinv_A = np.linalg.solve(P.T, lti.A.T).T  # A P^{-1}
    JR = Pinv_A
    J = 0.5 * (JR - JR.T)
    R = -0.5 * (JR + JR.T)
    PinvCt = np.linalg.solve(P, lti.C.T)
    G = 0.5 * (lti.B + PinvCt)
    K = 0.5 * (PinvCt - lti.B)
    S = 0.5 * (lti.D + lti.D.T)
    N = 0.5 * (lti.D - lti.D.T)
    if not math.isfinite(float(np.abs(J).max(initial=0.0))):
        raise ValueError("`sys` gave a non-finite pH form; reduce it with minreal")
    return LinearPortHamiltonian(J, R, 0.5 * (P + P.T), G, K, S, N)


def lti_tuple(lti: LTI) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B, C, D)`` of an LTI."""
    return lti.A, lti.B, lti.C, lti.D
