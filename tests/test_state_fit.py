"""fit_states: losses, the noise remedies, and errors that name the argument."""

from __future__ import annotations

import pytest
import torch

import phcontrol as phc
from phcontrol import plants

DT = 0.05


def noisy_oscillator(noise: float, seed: int = 1) -> torch.Tensor:
    truth = plants.mass_spring_damper(1.0, 4.0, 0.0)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(2, 2, generator=gen)
    x = phc.simulate(truth, x0, dt=DT, steps=149, method="rk4", substeps=2).x
    return x + noise * torch.randn(x.shape, generator=gen)


def linear_model() -> phc.PortHamiltonian:
    torch.manual_seed(0)
    return phc.PortHamiltonian(
        phc.QuadraticHamiltonian(2), phc.CanonicalJ(2), phc.CholeskyDissipation(2)
    )


def damping_rate(model: phc.PortHamiltonian) -> float:
    x = torch.zeros(1, 2)
    with torch.no_grad():
        A = (model.J_matrix(x)[0] - model.R_matrix(x)[0]) @ model.H.Q
    return float(-torch.linalg.eigvals(A).real.max())


def test_noise_invents_damping_that_smoothing_removes() -> None:
    x = noisy_oscillator(0.1)
    raw, smooth = linear_model(), linear_model()
    phc.fit_states(raw, x, DT, iterations=300, lr=0.03)
    phc.fit_states(smooth, x, DT, iterations=300, lr=0.03, smoothing=15)
    # The plant is lossless: any decay rate is invented by the fit.
    assert damping_rate(raw) > 0.05
    assert damping_rate(smooth) < 0.3 * damping_rate(raw)


def test_free_initial_states_are_learned_per_window() -> None:
    x = noisy_oscillator(0.05)
    fit = phc.fit_states(
        linear_model(), x, DT, loss="multi_step", horizon=10,
        free_initial_states=True, iterations=20, lr=0.03, log_every=10,
    )  # fmt: skip
    # 150 samples give 14 non-overlapping windows of 10 steps per trajectory.
    assert fit.initial_states is not None and fit.initial_states.shape == (28, 2)
    assert [h["iteration"] for h in fit.history] == [10.0, 20.0]
    assert fit.final_loss < fit.history[0]["loss"]


def test_derivative_loss_uses_given_derivatives() -> None:
    truth = plants.mass_spring_damper(1.0, 4.0, 0.0)
    x = phc.simulate(truth, torch.tensor([[1.0, 0.0]]), dt=DT, steps=40).x
    x_dot = truth.vector_field(x[0]).detach().unsqueeze(0)
    model = linear_model()
    phc.fit_states(model, x, DT, loss="derivative", x_dot=x_dot, iterations=300, lr=0.1)
    Q = model.H.Q.detach()
    assert torch.allclose(Q.diagonal(), torch.tensor([4.0, 1.0]), rtol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "kind", "match"),
    [
        ({"loss": "two_step"}, ValueError, "`loss` must be one of"),
        ({"free_initial_states": True}, phc.NotSupportedError, "multi_step"),
        ({"smoothing": 6}, ValueError, "odd integer"),
        ({"loss": "multi_step", "horizon": 50}, phc.ShapeError, "horizon=50"),
        ({"iterations": 0}, ValueError, "iterations"),
        (
            {"x_dot": torch.zeros(1, 5, 2), "loss": "derivative"},
            phc.ShapeError,
            "x_dot",
        ),
    ],
)
def test_bad_options_are_named(kwargs, kind, match) -> None:
    with pytest.raises(kind, match=match):
        phc.fit_states(linear_model(), torch.zeros(1, 10, 2), DT, **kwargs)


def test_bad_states_are_named() -> None:
    bad = torch.zeros(1, 10, 2)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(phc.ShapeError, match="finite"):
        phc.fit_states(linear_model(), bad, DT)
    with pytest.raises(TypeError, match="phcontrol model or a SympNet"):
        phc.fit_states(torch.nn.Linear(2, 2), torch.zeros(1, 10, 2), DT)
