"""SympNet: exact symplecticity for any weights, inverse, training, errors."""

from __future__ import annotations

import pytest
import torch

import phcontrol as phc
from phcontrol import plants

# The task's bound for Φ'ᵀ J Φ' = J in float64; the products of a few layer
# Jacobians of order one round at about 1e-15.
SYMPLECTIC_ATOL = 1e-10


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.5):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module.requires_grad_(False)


def canonical(n: int) -> torch.Tensor:
    k = n // 2
    J = torch.zeros(n, n)
    J[:k, k:] = torch.eye(k)
    J[k:, :k] = -torch.eye(k)
    return J


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_jacobian_is_symplectic_for_any_weights(n: int, seed: int) -> None:
    net = randomise(phc.SympNet(n, dt=0.3, layers=3, hidden=(16, 16)), seed)
    J = canonical(n)
    gen = torch.Generator().manual_seed(seed + 10)
    for x in 2.0 * torch.randn(4, n, generator=gen):
        D = torch.autograd.functional.jacobian(lambda z: net(z[None])[0], x)
        assert float((D.T @ J @ D - J).abs().max()) <= SYMPLECTIC_ATOL
        # Negative control: the map is not the identity, so the test has teeth.
        assert float((D - torch.eye(n)).abs().max()) > 1e-3


def test_inverse_undoes_the_map() -> None:
    net = randomise(phc.SympNet(4, dt=0.2, hidden=(8,)), 3)
    x = torch.randn(10, 4)
    assert torch.allclose(net.inverse(net(x)), x, rtol=0.0, atol=1e-12)


def test_training_on_the_pendulum_cuts_the_one_step_error() -> None:
    dt = 0.1
    x0 = torch.tensor([[1.0, 0.0], [-0.5, 1.5], [0.2, -2.0]])
    x = phc.simulate(plants.pendulum(), x0, dt=dt, steps=30, method="rk4", substeps=4).x
    torch.manual_seed(0)
    net = phc.SympNet(2, dt, layers=2, hidden=(16,))

    def one_step_error() -> float:
        with torch.no_grad():
            pred = net(x[:, :-1].reshape(-1, 2))
        return float((pred - x[:, 1:].reshape(-1, 2)).abs().max())

    before = one_step_error()
    fit = phc.fit_states(net, x, dt, iterations=150, lr=1e-2, log_every=50)
    assert fit.final_loss < 0.05 * fit.history[0]["loss"]
    assert one_step_error() < 0.1 * before


def test_model_file_round_trip(tmp_path) -> None:
    net = randomise(phc.SympNet(4, dt=0.05, layers=2, hidden=(8,)), 4)
    phc.save(net, tmp_path / "map.safetensors")
    back = phc.load(tmp_path / "map.safetensors")
    x = torch.randn(3, 4)
    assert torch.equal(back(x), net(x)) and back.dt == net.dt


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_states": 3, "dt": 0.1}, "even"),
        ({"n_states": 2, "dt": 0.0}, "dt"),
        ({"n_states": 2, "dt": 0.1, "layers": 0}, "layers"),
    ],
)
def test_bad_arguments_are_named(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        phc.SympNet(**kwargs)


def test_fit_refuses_what_a_map_cannot_do() -> None:
    net = phc.SympNet(2, dt=0.1)
    x = torch.zeros(1, 10, 2)
    with pytest.raises(phc.NotSupportedError, match="vector field"):
        phc.fit_states(net, x, 0.1, loss="derivative")
    with pytest.raises(ValueError, match="SympNet steps dt=0.1"):
        phc.fit_states(net, x, 0.2)
    with pytest.raises(phc.ShapeError, match="n_traj, T, 2"):
        phc.fit_states(net, torch.zeros(1, 10, 3), 0.1)
