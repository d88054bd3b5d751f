"""Save a model to one file, load it back, and see a tampered file refused.

Goal
    Write a port-Hamiltonian model with ``phc.save`` (one ``.safetensors``
    file holding the weights, the JSON configuration that rebuilds the model
    and a checksum), load it with ``phc.load``, check that the copy computes
    bitwise the same energies and vector field, then flip one byte of the
    file and watch ``phc.load`` refuse it with ``phc.ModelFileError``.
Data set
    None: the model is built in the script.
Expected runtime
    A few seconds (the same with ``PHCONTROL_SMOKE=1``).
Figure
    ``04_model_files.png`` in ``$PHCONTROL_OUT`` (default ``examples/out/``):
    the energy along a trajectory of the original and the loaded model.
"""

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import phcontrol as phc  # noqa: E402

SMOKE = os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

# A learned energy (MLP plus a quadratic floor) with damping and one port.
model = phc.PortHamiltonian(
    H=phc.MLPHamiltonian(2),
    J=phc.SkewSymmetric(2),
    R=phc.CholeskyDissipation(2),
    G=phc.InputMatrix(2, 1),
).double()

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "oscillator.safetensors"
    phc.save(model, path, metadata={"note": "example model", "seed": 0})
    print(f"saved {path.name}: {path.stat().st_size} bytes")

    loaded = phc.load(path)
    x = torch.randn(5, 2, dtype=torch.float64)
    u = torch.randn(5, 1, dtype=torch.float64)
    same_energy = torch.equal(model.energy(x), loaded.energy(x))
    same_field = torch.equal(model.vector_field(x, u), loaded.vector_field(x, u))
    print(f"loaded {type(loaded).__name__}: same energy {same_energy}, ", end="")
    print(f"same vector field {same_field}")

    # Flip one bit of the last byte, which belongs to a tensor's data.
    tampered = Path(folder) / "tampered.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    tampered.write_bytes(bytes(data))
    try:
        phc.load(tampered)
    except phc.ModelFileError as err:
        print(f"tampered file refused: {err}")
    else:
        raise SystemExit("a tampered file was accepted")

    steps = 20 if SMOKE else 200
    with torch.no_grad():
        x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        original = phc.simulate(model, x0, dt=0.05, steps=steps)
        copy = phc.simulate(loaded, x0, dt=0.05, steps=steps)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(original.t, original.energy[0], label="saved model", lw=2.5)
ax.plot(copy.t, copy.energy[0], "--", label="loaded model")
ax.set_xlabel("time")
ax.set_ylabel("H(x)")
ax.set_title("energy along the same trajectory")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "04_model_files.png", dpi=120)
print(f"figure written to {OUT / '04_model_files.png'}")

if not SMOKE:
    plt.show()
