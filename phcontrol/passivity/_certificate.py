"""Passivity certificates of learned pH models, written as JSON and re-checked.

A certificate names the model file (path relative to the certificate, and
its SHA-256) and records three kinds of evidence:

* structure: ``J`` skew, ``R`` positive semidefinite, ``H`` bounded below.
  Each fact is either true *by construction* (the parametrisation guarantees
  it for any weights) or only *sampled* at seeded random states;
* an energy-balance audit of seeded simulations under random inputs with the
  Gonzalez discrete gradient (``Trajectory.residual``);
* the KYP LMI on the linearisation at each named equilibrium (default: the
  minimiser of ``H``), with its storage ``P``.

:func:`verify_certificate` trusts none of the stored numbers: it reloads the
model, checks the checksum, redraws the samples from the seed, recomputes
every quantity and re-checks the stored ``P`` on recomputed matrices.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelFileError
from ._check import RECHECK_TOL, check_passivity
from ._lti import balance, make_lti, recheck

__all__ = ["ModelCertificate", "write_certificate", "verify_certificate"]

FORMAT = "phcontrol-passivity-certificate"
VERSION = 1
AUDIT_TOL = 1e-9
"""Largest accepted energy-balance residual per step, relative to ``1 + |H|``."""


@dataclass(frozen=True)
class ModelCertificate:
    """A certificate, written by :func:`write_certificate` or re-derived.

    Attributes
    ----------
    verdict : {"passive", "undecided", "not_passive"}
        ``passive`` when every check passed.
    by_construction : list of str
        Facts guaranteed by the parametrisation.
    sampled : list of str
        Facts only checked at sampled states or along simulations.
    problems : list of str
        Checks that failed (empty when passive).
    data : dict
        The full JSON document.

    Examples
    --------
    >>> import tempfile, pathlib, phcontrol as phc
    >>> from phcontrol.passivity import verify_certificate, write_certificate
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> phc.save(phc.plants.mass_spring_damper().double(), d / "m.safetensors")
    >>> cert = write_certificate(d / "m.safetensors", d / "m.cert.json", steps=5)
    >>> cert.verdict, verify_certificate(d / "m.cert.json").ok
    ('passive', True)
    """

    verdict: str
    by_construction: list[str]
    sampled: list[str]
    problems: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the verdict is ``passive``."""
        return self.verdict == "passive"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _evidence(
    model: Any,
    settings: dict[str, Any],
    equilibria: list[np.ndarray] | None,
    stored_P: list[np.ndarray] | None,
    strict: bool = False,
) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
    """Compute all evidence; with ``stored_P`` re-check those storages."""
    from ..integrators import simulate
    from ..linear import minimise_energy, to_state_space
    from ..structure import (
        CanonicalJ,
        CholeskyDissipation,
        PolynomialDissipation,
        SkewSymmetric,
    )

    gen = torch.Generator().manual_seed(int(settings["seed"]))
    dtype = next(iter(model.parameters())).dtype
    n, m = model.n_states, model.n_inputs
    box = float(settings["box"])
    x = (2.0 * torch.rand(int(settings["n_samples"]), n, generator=gen) - 1.0) * box
    x = x.to(dtype)
    problems: list[str] = []
    built: list[str] = []
    sampled: list[str] = []
    with torch.no_grad():
        J = model.J_matrix(x)
        R = model.R_matrix(x)
        H = model.energy(x)
    skew = float((J + J.transpose(1, 2)).abs().max())
    min_R = float(torch.linalg.eigvalsh(0.5 * (R + R.transpose(1, 2))).min())
    bound = float(model.H.lower_bound())
    min_H = float(H.min())
    eps = float(torch.finfo(dtype).eps)
    scale_R = float(R.abs().max()) + 1e-300
    (built if isinstance(model.J, SkewSymmetric | CanonicalJ) else sampled).append(
        "J(x) is skew-symmetric"
    )
    (
        built
        if model.R is None
        or isinstance(model.R, CholeskyDissipation | PolynomialDissipation)
        else sampled
    ).append("R(x) is positive semidefinite")
    (built if math.isfinite(bound) else sampled).append("H is bounded below")
    if skew != 0.0:
        problems.append(f"J + J^T reaches {skew:.3g} at the sampled states")
    if min_R < -64 * n * eps * scale_R:
        problems.append(f"R has the eigenvalue {min_R:.3g} < 0 at a sampled state")
    if math.isfinite(bound) and min_H < bound - 64 * eps * (1 + abs(bound)):
        problems.append(f"H = {min_H:.6g} is below its lower_bound {bound:.6g}")
    if not math.isfinite(bound):
        problems.append(
            "H has no finite lower_bound(); boundedness was only sampled "
            f"(min H = {min_H:.6g} on the box), which is not a proof"
        )
    x0 = (2.0 * torch.rand(int(settings["n_trajectories"]), n, generator=gen) - 1) * box
    steps = int(settings["steps"])
    u = torch.randn(x0.shape[0], steps, m, generator=gen).to(dtype)
    traj = simulate(
        model, x0.to(dtype), u, float(settings["dt"]), steps=steps, method="gonzalez"
    )
    assert traj.residual is not None and traj.energy is not None
    rel = traj.residual.detach().abs() / (1.0 + traj.energy[:, :-1].detach().abs())
    audit = float(rel.max())
    sampled.append(
        f"energy balance along {x0.shape[0]} simulated trajectories "
        f"({steps} Gonzalez steps each, random inputs)"
    )
    if not bool(traj.converged.all()):
        problems.append("a simulated trajectory did not converge")
    if not audit <= AUDIT_TOL:
        problems.append(f"energy-balance residual {audit:.3g} exceeds {AUDIT_TOL:g}")
    if equilibria is None:
        equilibria = [minimise_energy(model)]
    lin: list[dict[str, Any]] = []
    for k, x_eq in enumerate(equilibria):
        try:
            ss = to_state_space(model, x_eq=x_eq)
        except ValueError as err:
            problems.append(f"equilibrium {k}: {err}")
            lin.append({"x_eq": np.asarray(x_eq, float).tolist(), "P": None})
            continue
        sys = make_lti(ss.A, ss.B, ss.C, ss.D, 0.0)
        if stored_P is None:
            res = check_passivity((sys.A, sys.B, sys.C, sys.D), strict=strict)
            P = res.P
        else:
            P = stored_P[k]
        entry: dict[str, Any] = {"x_eq": np.asarray(x_eq, float).tolist()}
        if P is None:
            problems.append(f"no storage for the linearisation at equilibrium {k}")
            entry.update(P=None, margin_P=None, margin_lmi=None)
        else:
            bal, sc = balance(sys)
            rc = recheck(bal, sc.to_balanced(np.asarray(P, float)), RECHECK_TOL)
            entry.update(P=np.asarray(P).tolist(), margin_P=rc.margin_P)
            entry["margin_lmi"] = rc.margin_lmi
            if not rc.ok:
                problems.append(
                    f"the storage at equilibrium {k} fails the re-check "
                    f"(margin_P {rc.margin_P:.2g}, margin_lmi {rc.margin_lmi:.2g})"
                )
        lin.append(entry)
    built.append("passivity with storage H - min H, given the three facts above")
    data = {
        "structure": {
            "max_skew_error": skew,
            "min_eig_R": min_R,
            "min_H_sampled": min_H,
            "H_lower_bound": bound if math.isfinite(bound) else str(bound),
        },
        "energy_audit": {"max_relative_residual": audit},
        "equilibria": lin,
    }
    return data, built, sampled, problems


def write_certificate(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    equilibria: list[Any] | None = None,
    n_samples: int = 256,
    box: float = 2.0,
    n_trajectories: int = 4,
    steps: int = 50,
    dt: float = 0.01,
    seed: int = 0,
    strict: bool = False,
) -> ModelCertificate:
    """Check a saved pH model and write its passivity certificate as JSON.

    Parameters
    ----------
    model_path : str or os.PathLike
        A ``.safetensors`` model written by :func:`phcontrol.save`.
    out_path : str or os.PathLike
        Where to write the JSON certificate.
    equilibria : list of array_like, shape (n_states,), optional
        Equilibria for the linearisation LMIs (default the minimiser of ``H``).
    n_samples : int, default 256
        Number of sampled states in ``[-box, box]^n`` for the structure checks.
    box : float, default 2.0
        Half-width of the sampling box.
    n_trajectories, steps, dt : int, int, float
        Size of the energy-balance audit.
    seed : int, default 0
        Seed of the samples, initial states and inputs.
    strict : bool, default False
        Passed to :func:`check_passivity` for each linearisation: raise
        instead of warning about a doubtful convex solve or an
        ill-conditioned balancing.

    Returns
    -------
    ModelCertificate

    Examples
    --------
    >>> import tempfile, pathlib, torch, phcontrol as phc
    >>> from phcontrol.io import save
    >>> model = phc.PortHamiltonian(
    ...     phc.MLPHamiltonian(2, hidden=(8,)), phc.CanonicalJ(2),
    ...     phc.CholeskyDissipation(2), phc.InputMatrix(2, 1))
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save(model, d / "m.safetensors")
    >>> cert = write_certificate(d / "m.safetensors", d / "m.cert.json", steps=5)
    >>> verify_certificate(d / "m.cert.json").verdict == cert.verdict
    True
    """
    from ..io import _atomic_write, load

    model_path, out_path = Path(model_path), Path(out_path)
    model = load(model_path)
    settings = {
        "n_samples": n_samples,
        "box": box,
        "n_trajectories": n_trajectories,
        "steps": steps,
        "dt": dt,
        "seed": seed,
    }
    eq = None if equilibria is None else [np.asarray(e, float) for e in equilibria]
    data, built, sampled, problems = _evidence(model, settings, eq, None, strict)
    verdict = "passive" if not problems else "undecided"
    rel = os.path.relpath(model_path.resolve(), out_path.resolve().parent)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"path": rel, "sha256": _sha256(model_path)},
        "settings": settings,
        "verdict": verdict,
        "by_construction": built,
        "sampled": sampled,
        "problems": problems,
        **data,
    }
    _atomic_write(out_path, json.dumps(doc, indent=2).encode())
    return ModelCertificate(verdict, built, sampled, problems, doc)


def verify_certificate(path: str | os.PathLike[str]) -> ModelCertificate:
    """Re-check a certificate written by :func:`write_certificate`.

    Nothing stored is trusted except the seed, the settings and the storages
    ``P`` (the certificate itself): the model is reloaded (its SHA-256 must
    match), the samples and simulations are redrawn and every check is
    recomputed; each ``P`` is re-checked on freshly computed linearisations.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON certificate.

    Returns
    -------
    ModelCertificate
        With the recomputed verdict; ``problems`` lists every failed check,
        including a disagreement with the stored verdict.

    Raises
    ------
    ModelFileError
        If the certificate is unreadable or not a phcontrol certificate, or
        the model file is missing.

    Examples
    --------
    >>> import tempfile, pathlib, phcontrol as phc
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> phc.save(phc.plants.mass_spring_damper().double(), d / "m.safetensors")
    >>> _ = write_certificate(d / "m.safetensors", d / "m.cert.json", steps=5)
    >>> verify_certificate(d / "m.cert.json").verdict
    'passive'
    """
    from ..io import load

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelFileError(
            f"`path` {str(path)!r} must be a readable JSON certificate ({err}); "
            "write one with write_certificate"
        ) from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(
            f"`path` {str(path)!r} is not a phcontrol passivity certificate "
            f"(format must be {FORMAT!r}); write one with write_certificate"
        )
    model_path = (path.parent / doc["model"]["path"]).resolve()
    if not model_path.exists():
        raise ModelFileError(
            f"the certificate's model {str(model_path)!r} is missing; keep the model "
            "file at the same place relative to the certificate"
        )
    problems: list[str] = []
    if _sha256(model_path) != doc["model"]["sha256"]:
        problems.append("the model file's SHA-256 differs from the certified one")
    model = load(model_path)
    eq = [np.asarray(e["x_eq"], float) for e in doc.get("equilibria", [])]
    stored = [
        np.asarray(e["P"], float) if e.get("P") is not None else None
        for e in doc.get("equilibria", [])
    ]
    data, built, sampled, more = _evidence(
        model,
        doc["settings"],
        eq or None,
        stored if all(p is not None for p in stored) and stored else None,
    )
    problems += more
    verdict = "passive" if not problems else "undecided"
    if doc.get("verdict") != verdict:
        problems.append(
            f"the stored verdict {doc.get('verdict')!r} disagrees with the "
            f"recomputed {verdict!r}"
        )
        verdict = "undecided"
    return ModelCertificate(verdict, built, sampled, problems, {**doc, **data})
