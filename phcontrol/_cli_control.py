"""The ``phcontrol control`` verb: design, certify and simulate a controller.

Everything the user passes is read and checked before the output directory
is created, so bad input leaves nothing behind. Then ``--out`` receives
``controller.json`` (the law, its gains and target, and the model file's
SHA-256; no pickle), ``certificate.json`` (the closed-loop certificate) and
``closed_loop.png`` (states and closed-loop energy of one simulation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path
from typing import Any

__all__: list[str] = []

PLANTS = (
    "pendulum",
    "two_link_arm",
    "mass_spring_damper",
    "rlc_circuit",
    "duffing",
    "inertia_wheel_pendulum",
    "cart_pole",
)


class UsageError(Exception):
    """Bad input; the CLI turns it into status 2."""


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise UsageError(
            f"{flag} must be comma-separated numbers, e.g. 0.5,-0.3; got {text!r}"
        ) from err
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{flag} must be finite numbers; got {text!r}")
    return values


def _load_model(spec: str) -> tuple[Any, dict[str, Any]]:
    import torch

    from . import plants
    from .models import PortHamiltonian

    if spec.startswith("plant:"):
        name = spec.removeprefix("plant:")
        if name not in PLANTS:
            raise UsageError(
                f"MODEL {spec!r} names an unknown plant; use plant:NAME with NAME one "
                f"of {', '.join(PLANTS)}, or a .safetensors model file"
            )
        with _float64():
            model = getattr(plants, name)()
        return model, {"plant": name}
    path = Path(spec)
    if not path.is_file():
        raise UsageError(
            f"MODEL {spec!r} does not exist; pass a .safetensors model file or "
            "plant:NAME"
        )
    from .errors import ModelFileError
    from .io import load

    try:
        model = load(path)
    except (ModelFileError, ValueError, OSError) as err:
        raise UsageError(f"MODEL {spec!r}: {' '.join(str(err).split())}") from err
    if not isinstance(model, PortHamiltonian):
        kind = type(model).__name__
        fix = (
            "; a fit's file holds its pH part in normalised units as .system: "
            "save that with phc.save(phc.load(path).system, 'plant.safetensors') "
            "and pass plant.safetensors"
            if hasattr(model, "system")
            else ""
        )
        raise UsageError(
            f"MODEL {spec!r} holds {'an' if kind[0] in 'AEIOU' else 'a'} {kind}; a "
            f"controller needs a PortHamiltonian{fix}"
        )
    model = model.to(torch.float64).requires_grad_(False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return model, {"path": str(path), "sha256": digest}


class _float64:
    def __enter__(self) -> None:
        import torch

        self.old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_default_dtype(self.old)


def _design(model: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """Return the controller and the name of its kind."""
    from .control import DampingInjection, EnergyShaping, synthesize_shaping_gains
    from .errors import NotSupportedError, PHControlError

    kind = args.controller
    n, m = model.n_states, model.n_inputs
    if m == 0:
        raise UsageError("MODEL has no input; there is nothing to control")
    if kind == "auto":
        kind = "energy-shaping"
        try:
            EnergyShaping(model, [0.0] * (n // 2), 1.0, 1.0)
        except (NotSupportedError, ValueError):
            kind = "damping-injection"
    target = None if args.target is None else _numbers(args.target, "--target")
    try:
        if kind == "energy-shaping":
            if target is None or len(target) != n // 2:
                raise UsageError(
                    f"--target must give the {n // 2} positions q* for energy "
                    f"shaping; got {args.target!r}"
                )
            if args.stiffness is None and args.damping is None:
                gains = synthesize_shaping_gains(model, target, args.decay_rate)
                Kp, Kd = gains.stiffness, gains.damping
            elif args.stiffness is None or args.damping is None:
                raise UsageError("give both --stiffness and --damping, or neither")
            else:
                Kp, Kd = args.stiffness, args.damping
            return EnergyShaping(model, target, Kp, Kd), kind
        if target is not None and len(target) != n:
            raise UsageError(
                f"--target must give the {n} states x* for damping injection "
                f"(the minimiser of H by default); got {len(target)}"
            )
        gain = 1.0 if args.damping is None else args.damping
        return DampingInjection(model, gain, target), kind
    except UsageError:
        raise
    except (PHControlError, ValueError) as err:
        raise UsageError(f"{kind}: {' '.join(str(err).split())}") from err


def _plot(traj: Any, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = traj.t.numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for i in range(traj.x.shape[-1]):
        left.plot(t, traj.x[0, :, i].numpy(), label=f"x{i}")
    left.set_xlabel("time (s)")
    left.set_title("closed-loop states")
    left.legend()
    right.semilogy(t, traj.energy[0].abs().numpy() + 1e-300)
    right.set_xlabel("time (s)")
    right.set_title("|energy| of the loop (H_d; the plant H without a pH form)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """Run the verb; return the exit status and the summary document."""
    import torch

    from .control import certify_closed_loop, closed_loop
    from .integrators import simulate
    from .report import check_out_dir

    out = Path(args.out)
    try:
        check_out_dir(out, force=args.force)
    except FileExistsError as err:
        raise UsageError(str(err)) from err
    model, source = _load_model(args.model)
    ctrl, kind = _design(model, args)
    n = model.n_states
    if args.x0 is None:
        x0 = torch.zeros(1, n, dtype=torch.float64)
    else:
        values = _numbers(args.x0, "--x0")
        if len(values) != n:
            raise UsageError(f"--x0 must give {n} states; got {len(values)}")
        x0 = torch.tensor([values], dtype=torch.float64)
    loop = closed_loop(model, ctrl)
    cert = certify_closed_loop(loop, decay_rate=args.decay_rate)
    steps = max(1, int(round(args.duration / args.dt)))
    traj = simulate(loop, x0, dt=args.dt, steps=steps)
    out.mkdir(parents=True, exist_ok=True)
    controller_doc = {
        "format": "phcontrol-controller",
        "version": 1,
        "model": source,
        "kind": kind,
        **ctrl.to_dict(),
    }
    (out / "controller.json").write_text(json.dumps(controller_doc, indent=2))
    cert.save(out / "certificate.json")
    _plot(traj, out / "closed_loop.png")
    error = float((traj.x[0, -1] - loop.x_star).abs().max())
    rel = traj.residual.abs() / (1.0 + traj.energy[:, :-1].abs())
    doc = {
        "out": str(out),
        "controller": kind,
        "verdict": cert.verdict,
        "checks": {c.name: c.status for c in cert.checks},
        "final_error": error,
        "max_energy_residual": float(rel.max()),
        "converged": bool(traj.converged.all()),
    }
    ok = cert.verdict == "certified" and doc["converged"]
    return (0 if ok else 1), doc


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``control`` verb to the CLI's sub-parsers."""
    from .cli import _positive_float

    ctl = commands.add_parser(
        "control",
        parents=[common],
        help="design a passivity-based controller, certify and simulate it",
        description="Design a controller on a pH model (energy shaping for fully "
        "actuated mechanical models, damping injection otherwise), certify the "
        "closed loop and simulate it. Writes controller.json, certificate.json "
        "and closed_loop.png to --out.",
        epilog="exit status: 0 certified, 1 not certified or undecided, "
        "2 bad usage or bad input (nothing written)",
    )
    ctl.add_argument(
        "model",
        metavar="MODEL",
        help="a .safetensors model file, or plant:NAME for a reference plant "
        f"({', '.join(PLANTS)})",
    )
    ctl.add_argument(
        "--target",
        metavar="X[,X]",
        help="q* for energy shaping, x* for damping injection (default: the "
        "minimiser of H)",
    )
    ctl.add_argument(
        "--controller",
        choices=("auto", "energy-shaping", "damping-injection"),
        default="auto",
        help="default: energy shaping when the model allows it",
    )
    ctl.add_argument(
        "--decay-rate",
        type=_positive_float,
        default=1.0,
        metavar="RATE",
        help="required decay rate (1/s) of the certificate, and of the synthesised "
        "gains (default 1.0)",
    )
    ctl.add_argument("--stiffness", type=_positive_float, help="K_p (energy shaping)")
    ctl.add_argument("--damping", type=_positive_float, help="K_d on the port output")
    ctl.add_argument("--x0", metavar="X[,X]", help="initial state (default zeros)")
    ctl.add_argument(
        "--duration", type=_positive_float, default=10.0, help="default 10 s"
    )
    ctl.add_argument("--dt", type=_positive_float, default=0.02, help="default 0.02")
    ctl.add_argument("--out", required=True, metavar="DIR", help="output directory")
    ctl.add_argument(
        "--force", action="store_true", help="replace a non-empty --out directory"
    )
    ctl.add_argument("--json", action="store_true", help="print the summary as JSON")
