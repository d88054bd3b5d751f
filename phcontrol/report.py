"""Write the outputs of a fit to a directory: model file, JSON and a report page.

:func:`write_report` lays out one directory::

    model.safetensors   the fitted model (phcontrol.io.save)
    report.json         the fit's report, plus the published results of a dataset
    report.html         the same for a reader, with the figures inline
    figures/*.png       training curves, measured vs simulated, comparison

The directory is built as a hidden temporary sibling and renamed into
place once complete, so a crash or an interrupt never leaves a
half-written directory behind, and with ``force=True`` the previous
contents survive until the new ones are whole.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import io

__all__ = ["write_report", "report_dict", "check_out_dir"]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
JSON_FILE = "report.json"
HTML_FILE = "report.html"
FIGURE_DIR = "figures"


def check_out_dir(out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Check that a fit's outputs may be written to ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        The directory :func:`write_report` would create.
    force : bool, default False
        Allow replacing an existing, non-empty directory.

    Returns
    -------
    Path
        ``out_dir`` as a path.

    Raises
    ------
    FileExistsError
        If ``out_dir`` is a file, or a non-empty directory and ``force`` is
        False.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_out_dir(folder).is_dir()  # empty, so it may be used
    True
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(
            f"output directory {str(out)!r} is an existing file; choose another "
            "directory"
        )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"output directory {str(out)!r} already exists and is not empty; "
            "choose another directory or pass --force (force=True) to replace it"
        )
    return out


def _json_ready(value: Any) -> Any:
    """Return ``value`` with numpy scalars made Python and non-finite floats None."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _resolve_dataset(fit: Any, dataset: Any) -> Any:
    """Return the bundled Dataset the fit was made on, or None."""
    from . import datasets

    if dataset is None:
        source = fit.report.settings.get("source")
        if isinstance(source, str) and source in datasets.names():
            return datasets.load(source)
        return None
    if isinstance(dataset, str):
        return datasets.load(dataset)
    return dataset


def report_dict(fit: Any, *, dataset: Any = None) -> dict[str, Any]:
    """Return the JSON document that :func:`write_report` saves as ``report.json``.

    Parameters
    ----------
    fit : FitResult
        The result of :func:`phcontrol.identify`.
    dataset : Dataset or str, optional
        The bundled dataset the fit was made on, or its name; its published
        results and citation are added. By default it is taken from the
        fit's settings when their ``source`` names a bundled dataset.

    Returns
    -------
    dict
        ``fit.report.to_dict()`` with non-finite numbers as ``None``, plus
        ``dataset`` (name, unit, metric, test sets, citation) and
        ``published`` (``published[test_set][method]`` in the dataset's unit)
        when a dataset is known, and ``files``.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> from phcontrol.data import Log
    >>> t = 0.1 * np.arange(300)
    >>> u = np.sin(0.7 * t)[:, None]
    >>> log = Log(t=t, u=u, z=np.sin(0.7 * t - 0.3)[:, None], source="demo")
    >>> fit = phc.identify(log, model="linear", window=10, n_past=3, lbfgs_steps=0,
    ...                    iterations=1)
    >>> doc = report_dict(fit)
    >>> doc["unit"], "val" in doc["metrics"]
    ('log units', True)
    """
    dataset = _resolve_dataset(fit, dataset)
    doc = _json_ready(fit.report.to_dict())
    if dataset is not None:
        doc["dataset"] = {
            "name": dataset.name,
            "unit": dataset.unit,
            "metric": dataset.metric,
            "test_sets": list(dataset.test_sets),
            "init_window": dataset.init_window,
            "citation": dataset.citation,
        }
        doc["published"] = _json_ready(dataset.published)
    doc["files"] = {
        "model": MODEL_FILE,
        "report": HTML_FILE,
        "figures": sorted(_figure_names(fit, dataset).values()),
    }
    return doc


def _figure_names(fit: Any, dataset: Any) -> dict[str, str]:
    names = {"training": f"{FIGURE_DIR}/training.png"}
    for split in fit.predictions:
        names[f"prediction:{split}"] = f"{FIGURE_DIR}/prediction_{_slug(split)}.png"
    if dataset is not None and any(s in fit.report.metrics for s in dataset.published):
        names["comparison"] = f"{FIGURE_DIR}/comparison.png"
    return names


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text) or "split"


def write_report(
    fit: Any,
    out_dir: str | os.PathLike[str],
    *,
    dataset: Any = None,
    force: bool = False,
    keep: Sequence[str] = (),
) -> Path:
    """Write a fit's model, JSON report, report page and figures to a directory.

    Parameters
    ----------
    fit : FitResult
        The result of :func:`phcontrol.identify`.
    out_dir : str or path-like
        Directory to create. Missing parent directories are created.
    dataset : Dataset or str, optional
        The bundled dataset the fit was made on, or its name, for the
        published results; by default taken from the fit's settings.
    force : bool, default False
        Replace an existing, non-empty ``out_dir``.
    keep : sequence of str, default ()
        Names of files already in ``out_dir`` to carry over into the new
        directory (a fit's checkpoint); missing ones are skipped.

    Returns
    -------
    Path
        ``out_dir``, now holding ``model.safetensors``, ``report.json``,
        ``report.html`` and ``figures/*.png``.

    Raises
    ------
    FileExistsError
        If ``out_dir`` is a file, or a non-empty directory and ``force`` is
        False; nothing is written then.

    Notes
    -----
    Everything is written to a temporary sibling directory first, which is
    renamed to ``out_dir`` only when complete. If anything fails, the
    temporary directory is removed and ``out_dir`` is left as it was, even
    with ``force=True``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import phcontrol as phc
    >>> from phcontrol.report import write_report
    >>> fit = phc.identify(
    ...     "cascaded_tanks", model="linear", window=20, lbfgs_steps=1, iterations=2
    ... )
    >>> out = write_report(fit, pathlib.Path(tempfile.mkdtemp()) / "tanks")
    >>> sorted(p.name for p in out.iterdir())
    ['figures', 'model.safetensors', 'report.html', 'report.json']
    """
    out = check_out_dir(out_dir, force=force)
    dataset = _resolve_dataset(fit, dataset)
    doc = report_dict(fit, dataset=dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _write_contents(fit, tmp, doc, dataset)
        for name in keep:
            if (out / name).is_file():
                shutil.copy2(out / name, tmp / name)
        _move_into_place(tmp, out, force=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote %s", out)
    return out


def _move_into_place(tmp: Path, out: Path, *, force: bool) -> None:
    """Rename ``tmp`` to ``out``, replacing ``out`` only once ``tmp`` is whole."""
    if not out.exists():
        os.replace(tmp, out)
        return
    if not any(out.iterdir()):
        os.rmdir(out)
        os.replace(tmp, out)
        return
    if not force:  # it was filled while the report was being built
        check_out_dir(out, force=False)
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_contents(fit: Any, folder: Path, doc: dict[str, Any], dataset: Any) -> None:
    (folder / FIGURE_DIR).mkdir()
    metadata = {
        "source": doc["settings"].get("source"),
        "dataset": dataset.name if dataset is not None else None,
        "unit": doc["unit"],
        "metrics": {
            split: {"rmse": values.get("rmse"), "samples": values.get("samples")}
            for split, values in doc["metrics"].items()
        },
        "seed": doc["settings"].get("seed"),
    }
    io.save(fit.model, folder / MODEL_FILE, metadata=metadata)
    (folder / JSON_FILE).write_text(
        json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    figures = _write_figures(fit, folder, dataset)
    page = _html_page(fit, doc, dataset, figures)
    (folder / HTML_FILE).write_text(page, encoding="utf-8")


def _write_figures(fit: Any, folder: Path, dataset: Any) -> dict[str, str]:
    from . import plotting

    names = _figure_names(fit, dataset)
    scale = dataset.unit_scale if dataset is not None else 1.0
    unit = fit.report.unit
    dt = getattr(fit.model, "dt", None)
    _save(plotting.plot_training(fit.report.history), folder / names["training"])
    for split, (z_meas, z_sim) in fit.predictions.items():
        fig = plotting.plot_prediction(
            np.asarray(z_meas) * scale,
            np.asarray(z_sim) * scale,
            dt=dt,
            unit=unit,
            output_names=getattr(fit, "output_names", ()),
            title=f"{split}: measured and simulated output",
        )
        _save(fig, folder / names[f"prediction:{split}"])
    if "comparison" in names:
        rmse = {k: v["rmse"] for k, v in fit.report.metrics.items()}
        fig = plotting.plot_comparison(rmse, dataset.published, unit=dataset.unit)
        _save(fig, folder / names["comparison"])
    return names


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png")
    with contextlib.suppress(AttributeError):
        fig.clear()


# ---------------------------------------------------------------------------
# The report page


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2933; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #ccd; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f1f3f5; }
td.fit { font-weight: bold; background: #fff4e6; }
td.beaten { color: #2b8a3e; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
code { background: #f1f3f5; padding: 0 0.2rem; }
.note { color: #52606d; font-size: 0.92rem; }
"""


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return f"{v:.{digits}g}" if math.isfinite(v) else html.escape(str(v))
    return html.escape(str(value))


def _matrix(rows: Any) -> str:
    if not isinstance(rows, list) or not rows:
        return "<p class='note'>not available</p>"
    rows = [r if isinstance(r, list) else [r] for r in rows]
    body = "".join(
        "<tr>" + "".join(f"<td>{_num(v, 6)}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><tbody>{body}</tbody></table>"


def _metrics_table(doc: dict[str, Any]) -> str:
    metrics = doc["metrics"]
    published = doc.get("published", {})
    official = doc.get("dataset", {}).get("test_sets", [])
    order = [s for s in official if s in metrics]
    order += [s for s in metrics if s not in order]
    methods: list[str] = []
    for split in order:
        for method in published.get(split, {}):
            if method not in methods:
                methods.append(method)
    unit = html.escape(doc["unit"])
    head = (
        "<tr><th>split</th><th>samples</th><th>converged</th>"
        f"<th>this fit ({unit})</th>"
        + "".join(f"<th>{html.escape(m)}</th>" for m in methods)
        + "</tr>"
    )
    rows = []
    for split in order:
        values = metrics[split]
        rmse = values.get("rmse")
        label = html.escape(split) + (" (official test)" if split in official else "")
        cells = [
            f"<td>{label}</td>",
            f"<td>{_num(values.get('samples'))}</td>",
            f"<td>{_num(values.get('converged'))}</td>",
            f"<td class='fit'>{_num(rmse)}</td>",
        ]
        for method in methods:
            ref = published.get(split, {}).get(method)
            beaten = rmse is not None and ref is not None and rmse <= ref
            css = " class='beaten'" if beaten else ""
            cells.append(f"<td{css}>{_num(ref)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = (
        "<p class='note'>Simulation RMSE of the measured output after the "
        "initialisation window, in the benchmark's unit. Published figures "
        "the fit matches or beats are in green.</p>"
        if methods
        else "<p class='note'>Simulation RMSE of the measured output after the "
        "initialisation window, in the log's units.</p>"
    )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>{note}"


def _kv_table(items: Mapping[str, Any]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{_num(v, 6)}</td></tr>"
        for k, v in items.items()
    )
    return f"<table><tbody>{body}</tbody></table>"


def _html_page(fit: Any, doc: dict[str, Any], dataset: Any, figures: dict) -> str:
    settings = dict(doc["settings"])
    versions = settings.pop("versions", {})
    source = html.escape(str(settings.get("source", "")))
    audit = doc["audit"]
    params = doc["parameters"]
    adam = f"{_num(settings.get('iterations'))} Adam at most"
    stages = (
        f"no first stage, {adam}"
        if "first_stage" in settings and settings["first_stage"] is None
        else f"{_num(settings.get('lbfgs_steps'))} L-BFGS at most, then {adam}"
    )
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>phcontrol identify: {source}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Identification report: {source}</h1>",
        f"<p>Seed <code>{_num(settings.get('seed'))}</code>, wall time "
        f"{_num(doc['wall_time'], 3)} s, {_num(settings.get('steps_run'))} "
        f"training steps ({stages}). Model file <code>{MODEL_FILE}</code>.</p>",
    ]
    if doc.get("interrupted"):
        parts.append(
            "<p><b>Training was interrupted.</b> The model is the best one found "
            "before the interruption; <code>phcontrol identify ... --resume</code> "
            "continues the fit from the checkpoint in this directory.</p>"
        )
    parts += ["<h2>Simulation error</h2>", _metrics_table(doc)]
    if doc.get("events"):
        rows = "".join(
            f"<tr><td>{_num(e.get('iteration'))}</td>"
            f"<td>{html.escape(str(e.get('stage', '')))}</td>"
            f"<td>{html.escape(str(e.get('event', '')))}</td>"
            f"<td>{html.escape(str(e.get('action', '')))}</td></tr>"
            for e in doc["events"]
        )
        parts += [
            "<h2>Faults during fitting</h2>",
            "<table><thead><tr><th>step</th><th>stage</th><th>what happened</th>"
            f"<th>what was done</th></tr></thead><tbody>{rows}</tbody></table>",
        ]
    if "comparison" in figures:
        parts.append(f"<img src='{figures['comparison']}' alt='RMSE comparison'>")
    parts += [
        "<h2>Training curves</h2>",
        f"<img src='{figures['training']}' alt='training curves'>",
        "<h2>Measured and simulated output</h2>",
        "<p class='note'>Free-run simulation from the state the encoder estimates "
        "from the initialisation window. The shaded band on the whole record "
        "marks the zoomed window, centred on the largest error.</p>",
    ]
    for split in fit.predictions:
        key = f"prediction:{split}"
        parts.append(f"<h3>{html.escape(split)}</h3>")
        parts.append(f"<img src='{figures[key]}' alt='{html.escape(split)}'>")
    split = html.escape(str(audit.get("split", "")))
    parts.append("<h2>Energy-balance audit</h2>")
    if audit.get("audited", True):
        parts += [
            f"<p>Discrete energy balance <code>H(x') - H(x) + dissipated - "
            f"supplied</code> checked step by step along the simulation of "
            f"<b>{split}</b>. A passive model keeps it at round-off.</p>",
            _kv_table({k: v for k, v in audit.items() if k != "split"}),
        ]
    else:  # a model without energy (the neural ODE baseline)
        reason = html.escape(str(audit.get("reason", "no energy")))
        parts.append(f"<p>Not audited: {reason}.</p>")
    parts += [
        "<h2>Fitted parameters</h2>",
        f"<p class='note'>{html.escape(str(params.get('units', '')))}</p>",
    ]
    if "R" in params or "G" in params:
        parts += [
            "<h3>R (dissipation)</h3>",
            _matrix(params.get("R")),
            "<h3>G (input matrix)</h3>",
            _matrix(params.get("G")),
        ]
    others = {
        k: v
        for k, v in params.items()
        if k not in ("R", "G", "units") and not isinstance(v, (list, dict))
    }
    lists = {
        k: v for k, v in params.items() if k not in ("R", "G") and isinstance(v, list)
    }
    if others:
        parts += ["<h3>Other values</h3>", _kv_table(others)]
    for key, value in lists.items():
        parts += [f"<h3>{html.escape(key)}</h3>", _matrix([value])]
    flat = {k: v for k, v in settings.items() if not isinstance(v, (list, dict))}
    parts += [
        "<h2>Settings and versions</h2>",
        _kv_table(flat),
        _kv_table(versions) if isinstance(versions, Mapping) else "",
    ]
    if dataset is not None:
        parts += [
            "<h2>Data</h2>",
            f"<p>{html.escape(dataset.citation)}</p>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)
