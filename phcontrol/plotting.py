"""Figures for fit reports: training curves, measured against simulated output.

Every function builds a :class:`matplotlib.figure.Figure` directly, without
``pyplot``, so no global figure state or interactive backend is touched and
figures render with Agg wherever they are saved. ``matplotlib`` is imported
inside the functions, so ``import phcontrol`` does not pay for it.

Outputs are arrays of shape (N, n_outputs); the time axis is in seconds when
a sample step ``dt`` is given, in samples otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_training", "plot_prediction", "plot_comparison"]

_MEASURED = "#1f2933"
_SIMULATED = "#d9480f"
_ERROR = "#1971c2"
_VALIDATION = "#2b8a3e"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def plot_training(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Draw the training and validation loss against the iteration.

    Parameters
    ----------
    history : sequence of dict
        One record per iteration with ``"iteration"`` and ``"train_loss"``;
        records at validation points also hold ``"val_loss"``. Non-finite
        losses are left out.

    Returns
    -------
    matplotlib.figure.Figure
        One axis, logarithmic loss scale when every loss is positive.

    Examples
    --------
    >>> history = [{"iteration": k, "train_loss": 1.0 / k} for k in range(1, 20)]
    >>> history[-1]["val_loss"] = 0.06
    >>> fig = plot_training(history)
    >>> fig.axes[0].get_xlabel()
    'iteration'
    """
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    train = _finite_pairs(history, "train_loss")
    val = _finite_pairs(history, "val_loss")
    if train[0].size:
        marker = "." if train[0].size < 60 else None
        ax.plot(*train, color=_SIMULATED, lw=1.0, marker=marker, label="training loss")
    if val[0].size:
        ax.plot(
            *val, color=_VALIDATION, lw=1.6, marker="o", ms=4, label="validation loss"
        )
        best = int(np.argmin(val[1]))
        ax.plot(
            val[0][best],
            val[1][best],
            marker="*",
            ms=13,
            color=_VALIDATION,
            ls="none",
            label=f"best validation ({val[1][best]:.3g})",
        )
    losses = np.concatenate([train[1], val[1]])
    if losses.size and (losses > 0).all():
        ax.set_yscale("log")
    if not losses.size:
        ax.text(
            0.5, 0.5, "no finite loss recorded", ha="center", transform=ax.transAxes
        )
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean squared error (normalised output)")
    ax.set_title("Training curves")
    ax.grid(True, which="major", alpha=0.3)
    if losses.size:
        ax.legend(loc="upper right", frameon=False)
    return fig


def _finite_pairs(
    history: Sequence[Mapping[str, Any]], key: str
) -> tuple[np.ndarray, np.ndarray]:
    pairs = [
        (float(rec["iteration"]), float(rec[key]))
        for rec in history
        if rec.get(key) is not None and math.isfinite(float(rec[key]))
    ]
    if not pairs:
        return np.empty(0), np.empty(0)
    its, values = zip(*pairs, strict=True)
    return np.asarray(its), np.asarray(values)


def plot_prediction(
    z_measured: np.ndarray,
    z_simulated: np.ndarray,
    *,
    dt: float | None = None,
    unit: str = "",
    title: str = "",
    zoom: int = 250,
    output_names: Sequence[str] = (),
) -> Figure:
    """Overlay measured and simulated outputs: the whole record and a zoom.

    Parameters
    ----------
    z_measured, z_simulated : ndarray, shape (N, n_outputs)
        Measured and simulated outputs in the unit given by ``unit``.
    dt : float, optional
        Sample step in seconds; without it the time axis counts samples.
    unit : str, default ""
        Unit of the outputs, shown on the axes.
    title : str, default ""
        Figure title, such as the split's name.
    zoom : int, default 250
        Samples in the zoomed window, which is centred on the largest
        absolute error of each output and shaded on the whole-record axis.
    output_names : sequence of str, default ()
        Names of the outputs; ``z0``, ``z1``, ... when empty.

    Returns
    -------
    matplotlib.figure.Figure
        Per output, the whole record (left) and the zoomed window (right),
        each with the simulation error, simulated minus measured, beneath.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0.0, 10.0, 1000)[:, None]
    >>> fig = plot_prediction(np.sin(t), np.sin(t) + 0.01, dt=0.01, unit="V")
    >>> len(fig.axes)
    4
    """
    zm = np.asarray(z_measured, dtype=float)
    zs = np.asarray(z_simulated, dtype=float)
    if zm.ndim == 1:
        zm, zs = zm[:, None], zs[:, None]
    if zm.shape != zs.shape:
        raise ValueError(
            f"`z_measured` and `z_simulated` must have the same shape; found "
            f"{zm.shape} and {zs.shape}"
        )
    n, n_out = zm.shape
    step = dt if dt is not None and math.isfinite(dt) and dt > 0 else None
    t = np.arange(n) * (step or 1.0)
    t_label = "time (s)" if step else "sample"
    suffix = f" ({unit})" if unit else ""
    fig = _figure(11.0, 4.6 * n_out + 0.5)
    grid = fig.add_gridspec(
        2 * n_out, 2, width_ratios=(2.0, 1.0), height_ratios=(2.2, 1.0) * n_out
    )
    width = max(2, min(int(zoom), n))
    for j in range(n_out):
        name = output_names[j] if j < len(output_names) else f"z{j}"
        err = zs[:, j] - zm[:, j]
        finite = np.isfinite(err)
        centre = int(np.nanargmax(np.abs(err))) if finite.any() else n // 2
        lo = min(max(0, centre - width // 2), n - width)
        hi = lo + width
        rmse = float(np.sqrt(np.mean(err[finite] ** 2))) if finite.any() else math.nan
        whole = fig.add_subplot(grid[2 * j, 0])
        whole_err = fig.add_subplot(grid[2 * j + 1, 0], sharex=whole)
        part = fig.add_subplot(grid[2 * j, 1])
        part_err = fig.add_subplot(grid[2 * j + 1, 1], sharex=part)
        whole.plot(t, zm[:, j], color=_MEASURED, lw=0.6, label="measured")
        whole.plot(t, zs[:, j], color=_SIMULATED, lw=0.6, alpha=0.75, label="simulated")
        whole_err.plot(t, err, color=_ERROR, lw=0.6)
        if width < n:
            for ax in (whole, whole_err):
                ax.axvspan(t[lo], t[hi - 1], color="#fab005", alpha=0.3, lw=0)
        whole.set_title(f"{name}: whole record, RMSE {rmse:#.4g}{suffix}", fontsize=10)
        whole.set_ylabel(f"{name}{suffix}")
        whole.legend(loc="upper left", frameon=True, fontsize=8, ncols=2)
        whole_err.set_ylabel(f"error{suffix}")
        whole_err.set_xlabel(t_label)
        part.plot(t[lo:hi], zm[lo:hi, j], color=_MEASURED, lw=1.4, label="measured")
        part.plot(
            t[lo:hi], zs[lo:hi, j], color=_SIMULATED, lw=1.2, ls="--", label="simulated"
        )
        part_err.plot(t[lo:hi], err[lo:hi], color=_ERROR, lw=1.0)
        zoom_title = "zoom: around the largest error" if width < n else "whole record"
        part.set_title(zoom_title, fontsize=10)
        part.legend(loc="upper left", frameon=True, fontsize=8)
        part_err.set_xlabel(t_label)
        for ax in (whole, whole_err, part, part_err):
            ax.grid(True, alpha=0.3)
        for ax in (whole, part):
            ax.tick_params(labelbottom=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(
    rmse: Mapping[str, float],
    published: Mapping[str, Mapping[str, float]],
    *,
    unit: str = "",
) -> Figure:
    """Compare a fit's RMSE with published results, one panel per test set.

    Parameters
    ----------
    rmse : mapping of str to float
        This fit's RMSE per test set, in ``unit``.
    published : mapping of str to mapping of str to float
        ``published[test_set][method]``, in ``unit``. Test sets missing from
        ``rmse`` are left out.
    unit : str, default ""
        Unit of every figure.

    Returns
    -------
    matplotlib.figure.Figure
        Horizontal bars on a logarithmic axis, this fit highlighted.

    Examples
    --------
    >>> fig = plot_comparison({"test": 0.5}, {"test": {"linear": 5.0, "NARX": 0.6}})
    >>> [label.get_text() for label in fig.axes[0].get_yticklabels()]
    ['this fit', 'NARX', 'linear']
    """
    sets = [name for name in published if name in rmse]
    fig = _figure(7.5, max(2.2, 0.42 * sum(len(published[s]) + 1 for s in sets) + 1.0))
    if not sets:
        fig.add_subplot().text(0.5, 0.5, "no published results for these splits")
        return fig
    axes = fig.subplots(len(sets), 1, squeeze=False)[:, 0]
    suffix = f" ({unit})" if unit else ""
    for ax, name in zip(axes, sets, strict=True):
        rows = [("this fit", float(rmse[name]))]
        rows += sorted(published[name].items(), key=lambda kv: kv[1])
        rows = [(label, value) for label, value in rows if math.isfinite(value)]
        rows.sort(key=lambda kv: kv[1])
        labels = [label for label, _ in rows]
        values = [value for _, value in rows]
        colors = [_SIMULATED if label == "this fit" else "#adb5bd" for label in labels]
        ypos = np.arange(len(rows))[::-1]
        ax.barh(ypos, values, color=colors)
        ax.set_yticks(ypos, labels)
        for y, value in zip(ypos, values, strict=True):
            ax.text(value, y, f" {value:.3g}", va="center", fontsize=8)
        if all(v > 0 for v in values):
            ax.set_xscale("log")
            ax.set_xlim(min(values) / 1.5, max(values) * 3.0)
        ax.set_title(f"{name}: simulation RMSE{suffix}, lower is better", fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    return fig
