"""The ``phcontrol check`` verb."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

import phcontrol as phc
from phcontrol.cli import main

PASSIVE = {"A": [[-1.0]], "B": [[1.0]], "C": [[1.0]], "D": [[0.0]]}
NOT_PASSIVE = {"A": [[-2.0]], "B": [[1.0]], "C": [[-3.0]], "D": [[1.0]]}  # (s-1)/(s+2)


def test_json_file_passive_exits_0(tmp_path, capsys):
    path = tmp_path / "sys.json"
    path.write_text(json.dumps(PASSIVE))
    assert main(["check", str(path)]) == 0
    assert "passive" in capsys.readouterr().out


def test_npz_not_passive_exits_1_and_json_output(tmp_path, capsys):
    path = tmp_path / "sys.npz"
    np.savez(path, **{k: np.array(v) for k, v in NOT_PASSIVE.items()})
    assert main(["check", str(path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "not_passive"


def test_mat_discrete_zoh_is_not_passive(tmp_path):
    a = np.exp(-0.1)
    path = tmp_path / "sys.mat"
    scipy.io.savemat(
        path, {"A": [[a]], "B": [[1 - a]], "C": [[1.0]], "D": [[0.0]], "dt": 0.1}
    )
    assert main(["check", str(path)]) == 1


def test_model_file_is_passive(tmp_path):
    from phcontrol.io import save

    model = phc.PortHamiltonian(
        phc.QuadraticHamiltonian(2), phc.CanonicalJ(2), None, phc.InputMatrix(2, 1)
    )
    save(model, tmp_path / "m.safetensors")
    assert main(["check", str(tmp_path / "m.safetensors")]) == 0


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        (None, "missing.json", "does not exist"),
        ("{}", "sys.json", "missing A, B, C, D"),
        ("not json", "sys.json", "cannot read"),
        ("x", "sys.txt", "unknown suffix"),
        (json.dumps({**PASSIVE, "C": [[1.0], [2.0]]}), "sys.json", "`D` must have"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, content, name, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phcontrol: error:") and err.count("\n") == 1
    assert match in err


def test_identify_verb_still_parses():
    assert main(["identify", "log.csv", "--outputs", "y"]) == 2


def test_strict_turns_a_doubtful_solve_into_a_failed_check(
    tmp_path, capsys, monkeypatch
):
    import phcontrol.passivity as passivity
    from phcontrol.errors import SolverError

    seen = []

    def doubtful(system, *, strict=False, **kwargs):
        seen.append(strict)
        if strict:
            raise SolverError("the KYP LMI ended 'optimal_inaccurate'")
        return original(system, **kwargs)

    original = passivity.check_passivity
    monkeypatch.setattr(passivity, "check_passivity", doubtful)
    path = tmp_path / "sys.json"
    path.write_text(json.dumps(PASSIVE))
    assert main(["check", str(path)]) == 0
    assert main(["check", str(path), "--strict"]) == 1
    assert seen == [False, True]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"phcontrol: error: {str(path)!r}: the KYP LMI ended 'optimal_inaccurate'"
    ]
