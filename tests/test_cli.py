"""The ``phcontrol identify`` command: exit codes, refusals and its outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phcontrol.cli import EXIT_OK, EXIT_USAGE, main

TINY = [
    "--first-stage",
    "lbfgs",
    "--lbfgs-steps",
    "1",
    "--iterations",
    "2",
    "--window",
    "20",
    "-q",
]


@pytest.fixture()
def spring_csv(tmp_path):
    """A damped spring driven by a smooth input, as a CSV log."""
    rng = np.random.default_rng(0)
    t = 0.1 * np.arange(400)
    u = np.convolve(rng.standard_normal(400), np.ones(5) / 5, mode="same")
    q = np.zeros(400)
    v = 0.0
    for k in range(399):
        v += 0.1 * (u[k] - q[k] - 0.3 * v)
        q[k + 1] = q[k] + 0.1 * v
    path = tmp_path / "spring.csv"
    rows = np.column_stack([t, u, q])
    np.savetxt(path, rows, delimiter=",", header="t,u,q", comments="")
    return path


def test_identify_writes_model_report_and_figures(spring_csv, tmp_path, capsys):
    out = tmp_path / "fit"
    args = [str(spring_csv), "--time", "t", "--inputs", "u", "--outputs", "q"]
    code = main(["identify", *args, "--out", str(out), "--json", *TINY])
    assert code == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["out"] == str(out)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figures", "model.safetensors", "report.html", "report.json"]
    assert (out / "figures" / "prediction_val.png").stat().st_size > 0
    assert doc["metrics"]["val"]["rmse"] > 0


def test_identify_refuses_a_non_empty_out_dir_unless_forced(spring_csv, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [str(spring_csv), "--time", "t", "--inputs", "u", "--outputs", "q"]
    assert main(["identify", *args, "--out", str(out), *TINY]) == EXIT_USAGE
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["identify", *args, "--out", str(out), "--force", *TINY]) == EXIT_OK
    assert not (out / "keep.txt").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("t,u,q\n0,1,2\n0.1,1,nan\n0.2,1,3\n", "non-finite"),
        ("t,u,q\n0,1,2\n0.2,1,2\n0.1,1,3\n", "time"),
        ("t,u\n0,1\n0.1,1\n", "q"),
        ("", "empty"),
    ],
)
def test_bad_log_is_one_line_exit_2_and_no_output(tmp_path, capsys, content, match):
    log = tmp_path / "bad.csv"
    log.write_text(content)
    out = tmp_path / "never"
    code = main(
        [
            "identify",
            str(log),
            "--time",
            "t",
            "--inputs",
            "u",
            "--outputs",
            "q",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE
    assert not out.exists()
    assert len(err) == 1 and err[0].startswith("phcontrol: error:")
    assert match in err[0]


def test_a_refused_option_is_named_as_its_flag(spring_csv, tmp_path, capsys):
    out = tmp_path / "never"
    args = [str(spring_csv), "--time", "t", "--inputs", "u", "--outputs", "q"]
    code = main(["identify", *args, "--model", "neural_ode", "--out", str(out), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE
    assert not out.exists()
    assert len(err) == 1
    assert "--first-stage lm" not in err[0] and "first_stage=" not in err[0]
    assert "--first-stage lbfgs" in err[0] and "leave --first-stage unset" in err[0]


def test_unknown_dataset_is_a_usage_error(tmp_path, capsys):
    assert (
        main(["identify", "--dataset", "silverbx", "--out", str(tmp_path / "x")]) == 2
    )
    assert "silverbox" in capsys.readouterr().err


def test_summary_keeps_significant_zeros(capsys):
    from pathlib import Path

    from phcontrol.cli import _print_summary

    doc = {"unit": "mV", "metrics": {"val": {"rmse": 1.0001}, "test": {"rmse": 1.41}}}
    _print_summary(doc, Path("out"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["val", "1.000"]
    assert lines[2].split() == ["test", "1.410"]


def test_prediction_figures_are_labelled_with_the_log_columns(
    spring_csv, tmp_path, monkeypatch
):
    from phcontrol import plotting

    seen = []
    original = plotting.plot_prediction

    def spy(*args, **kwargs):
        seen.append(tuple(kwargs.get("output_names", ())))
        return original(*args, **kwargs)

    monkeypatch.setattr(plotting, "plot_prediction", spy)
    args = [str(spring_csv), "--time", "t", "--inputs", "u", "--outputs", "q"]
    assert main(["identify", *args, "--out", str(tmp_path / "fit"), *TINY]) == EXIT_OK
    assert seen and all(names == ("q",) for names in seen)
