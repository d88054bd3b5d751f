"""The ``phcontrol control`` verb: outputs, exit codes, bad input."""

from __future__ import annotations

import json

import pytest
import torch

import phcontrol as phc
from phcontrol.cli import main
from phcontrol.control import verify_closed_loop_certificate

torch.set_num_threads(1)

SHORT = ["--duration", "1", "--dt", "0.05"]


def test_energy_shaping_of_a_model_file_writes_three_certified_outputs(
    tmp_path, capsys
):
    model_path = tmp_path / "arm.safetensors"
    phc.save(phc.plants.two_link_arm(), model_path)
    out = tmp_path / "out"
    code = main(
        [
            "control",
            str(model_path),
            "--target",
            "0.5,-0.3",
            "--out",
            str(out),
            "--json",
            *SHORT,
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["verdict"] == "certified"
    assert doc["controller"] == "energy-shaping"
    assert sorted(p.name for p in out.iterdir()) == [
        "certificate.json",
        "closed_loop.png",
        "controller.json",
    ]
    ctrl = json.loads((out / "controller.json").read_text())
    assert ctrl["model"]["sha256"] and ctrl["controller"] == "EnergyShaping"
    assert verify_closed_loop_certificate(out / "certificate.json").verdict == (
        "certified"
    )


def test_a_decay_rate_the_loop_cannot_meet_exits_1(tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "control",
            "plant:mass_spring_damper",
            "--controller",
            "damping-injection",
            "--damping",
            "0.5",
            "--decay-rate",
            "5",
            "--out",
            str(out),
            *SHORT,
        ]
    )
    assert code == 1
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["verdict"] == "not_certified"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["plant:nope"], "unknown plant"),
        (["missing.safetensors"], "does not exist"),
        (["plant:two_link_arm", "--target", "1"], "--target must give the 2"),
        (["plant:two_link_arm", "--target", "a,b"], "comma-separated numbers"),
        (["plant:pendulum", "--stiffness", "2", "--target", "1"], "give both"),
        (
            ["plant:cart_pole", "--controller", "energy-shaping", "--target", "0,3"],
            "full actuation",
        ),
    ],
)
def test_bad_input_exits_2_and_leaves_no_directory(tmp_path, capsys, args, match):
    out = tmp_path / "out"
    assert main(["control", *args, "--out", str(out)]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_a_fits_model_file_is_refused_with_the_way_to_its_ph_part(tmp_path, capsys):
    import numpy as np

    from phcontrol.data import Log

    t = 0.1 * np.arange(300)
    log = Log(t=t, u=np.sin(0.7 * t)[:, None], z=np.sin(0.7 * t - 0.3)[:, None])
    fit = phc.identify(
        log, model="linear", window=10, n_past=3, lbfgs_steps=0, iterations=1
    )
    path = tmp_path / "fit.safetensors"
    phc.save(fit.model, path)
    out = tmp_path / "out"
    code = main(["control", str(path), "--target", "0.1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "holds an IdentifiedModel; a controller needs a PortHamiltonian" in err
    assert "phc.save(phc.load(path).system, 'plant.safetensors')" in err
