"""The ``phcontrol`` command line.

``phcontrol identify`` fits a passive port-Hamiltonian model (or, with
``--model neural_ode``, the black-box baseline) to a bundled log or to a
log file and writes the model, a JSON report and a report page with
figures to one directory (see :mod:`phcontrol.report`).

``phcontrol check`` decides passivity of a model file or a state-space file
(exit 0 passive, 1 not passive or undecided).

``phcontrol control`` designs a passivity-based controller on a model,
certifies the closed loop and simulates it (exit 0 certified, 1 not
certified or undecided); see :mod:`phcontrol._cli_control`.

Exit status: 0 success, 1 the fit failed, 2 bad usage or bad data, 130
the fit was interrupted (SIGINT or SIGTERM) and its best model so far was
written. Errors are one line on stderr, ``phcontrol: error: ...``;
``--debug`` adds the traceback. Results go to stdout, diagnostics and the
progress bar to stderr.

Under ``torchrun --nproc_per_node=N -m phcontrol identify ...`` the N
processes share the fit (see :func:`phcontrol.identify`); rank 0 alone
writes ``--out`` and prints, the others report errors only and end with
the fit's exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK = 0
"""Exit status of a successful command."""
EXIT_FAILED = 1
"""Exit status when the fit failed (no convergence, non-finite results)."""
EXIT_USAGE = 2
"""Exit status for bad usage or bad data; nothing was written."""
EXIT_INTERRUPTED = 130
"""Exit status of an interrupted fit; its best model so far was written."""

CHECKPOINT_FILE = "checkpoint.safetensors"
"""Name of the fit's checkpoint inside the ``--out`` directory."""

_PROG = "phcontrol"


class _UsageError(Exception):
    """Bad command-line usage, reported as a one-line error with status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and raise instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _number(kind: type, rule: str, ok: Any) -> Any:
    """Build an argparse type: parse with ``kind``, accept values where ``ok``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_nonnegative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
_positive_float = _number(
    float, "a positive number", lambda v: math.isfinite(v) and v > 0
)


def _columns(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated column names, got {text!r}"
        )
    return names


def _fit_default(name: str) -> Any:
    """Return the default of one of :func:`phcontrol.identify`'s options."""
    import inspect

    from .identify import identify

    return inspect.signature(identify).parameters[name].default


def _build_parser() -> _Parser:
    from . import __version__

    common = _Parser(add_help=False)
    noise = common.add_argument_group("output and diagnostics")
    noise.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more (-v info, -vv debug) on stderr",
    )
    noise.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only errors on stderr; no progress bar",
    )
    noise.add_argument(
        "--debug", action="store_true", help="show the traceback of an error"
    )

    parser = _Parser(
        prog=_PROG,
        description="Port-Hamiltonian system identification, verification and control.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ident = commands.add_parser(
        "identify",
        parents=[common],
        help="fit a passive pH model to a log and write a report",
        description="Fit a passive port-Hamiltonian model to a log and write "
        "model.safetensors, report.json, report.html and figures/ to --out. "
        "Without LOG or --dataset, fits the bundled Silverbox log.",
        epilog="exit status: 0 ok, 1 fit failed, 2 bad usage or bad data, "
        "130 interrupted (the best model so far is written; continue with "
        "--resume)",
    )
    ident.add_argument(
        "log",
        nargs="?",
        metavar="LOG",
        help="log file (.csv with a header, .npz, .mat, .txt)",
    )
    data = ident.add_argument_group("data")
    data.add_argument(
        "--dataset",
        metavar="NAME",
        help="bundled log to fit: silverbox (default), emps, cascaded_tanks, "
        "real_pendulum",
    )
    data.add_argument("--time", metavar="COL", help="time column of LOG, in seconds")
    data.add_argument(
        "--dt", type=_positive_float, metavar="SECONDS", help="fixed step of LOG"
    )
    data.add_argument(
        "--inputs", type=_columns, metavar="COL[,COL]", help="input columns of LOG"
    )
    data.add_argument(
        "--outputs",
        type=_columns,
        metavar="COL[,COL]",
        help="measured-output columns of LOG",
    )
    data.add_argument(
        "--strict",
        action="store_true",
        help="refuse an irregularly sampled LOG instead of warning",
    )
    data.add_argument(
        "--max-bytes",
        type=_positive_int,
        metavar="BYTES",
        help="refuse a LOG file larger than this (default 2 GiB)",
    )
    fit = ident.add_argument_group("fit")
    fit.add_argument(
        "--model",
        choices=("mechanical", "linear", "friction", "tanks", "neural_ode"),
        default="mechanical",
        help="model family (default: mechanical); neural_ode is the black-box "
        "baseline: not passive, no energy audit",
    )
    fit.add_argument(
        "--first-stage",
        choices=("lm", "lbfgs"),
        help="optimiser of the physical parameters: Levenberg-Marquardt or "
        "L-BFGS (default: lm for mechanical, lbfgs for the others; neural_ode "
        "has no physical parameters and no first stage)",
    )
    fit.add_argument("--seed", type=_nonnegative_int, default=0, help="default: 0")
    fit.add_argument(
        "--lbfgs-steps",
        type=_nonnegative_int,
        help="L-BFGS steps on the physical parameters, with --first-stage "
        "lbfgs (0 skips them; "
        f"default {_fit_default('lbfgs_steps')})",
    )
    fit.add_argument(
        "--iterations",
        type=_nonnegative_int,
        help="Adam iterations on every parameter (0 skips them; "
        f"default {_fit_default('iterations')})",
    )
    fit.add_argument(
        "--max-time",
        type=_positive_float,
        metavar="SECONDS",
        help="stop training after this long",
    )
    fit.add_argument(
        "--substeps",
        type=_positive_int,
        help="discrete-gradient steps per sample, RK4 steps for neural_ode "
        f"(default {_fit_default('substeps')})",
    )
    fit.add_argument(
        "--window",
        type=_positive_int,
        help=f"samples per window (default {_fit_default('window')})",
    )
    fit.add_argument(
        "--batch-size",
        type=_positive_int,
        help=f"windows per Adam iteration (default {_fit_default('batch_size')})",
    )
    out = ident.add_argument_group("output")
    out.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default: runs/identify-<dataset or log name>)",
    )
    out.add_argument(
        "--force", action="store_true", help="replace a non-empty --out directory"
    )
    out.add_argument(
        "--resume",
        action="store_true",
        help=f"continue an interrupted fit from --out/{CHECKPOINT_FILE} "
        "(same LOG and options)",
    )
    out.add_argument(
        "--json", action="store_true", help="print the report as JSON on stdout"
    )

    check = commands.add_parser(
        "check",
        parents=[common],
        help="check passivity of a model or a state-space system",
        description="Check passivity of a model file (.safetensors) or a "
        "state-space file (.npz, .mat or .json with A, B, C, D and optional dt).",
        epilog="exit status: 0 passive, 1 not passive or undecided, 2 bad input",
    )
    check.add_argument(
        "system", metavar="MODEL_OR_SYSTEM", help="model or state-space file"
    )
    check.add_argument(
        "--json", action="store_true", help="print the verdict as JSON on stdout"
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="a doubtful solve (solver status, conditioning) fails the check "
        "with exit 1 instead of a warning",
    )
    from ._cli_control import add_parser as add_control_parser

    add_control_parser(commands, common)
    return parser


class _TqdmHandler(logging.Handler):
    """Write log records through tqdm so that they do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _Diagnostics:
    """Route phcontrol's log records and warnings to stderr for one command.

    ``-q`` shows errors only, the default adds warnings, ``-v`` information
    and ``-vv`` debugging detail. Warnings become one ``warning:`` line each.
    Everything is undone by :meth:`close`, so that calling :func:`main` from
    Python leaves logging and warnings as they were.
    """

    def __init__(self, verbose: int, quiet: bool) -> None:
        import warnings

        if quiet:
            level = logging.ERROR
        else:
            level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
        self.handler = _TqdmHandler()
        self.handler.setFormatter(_LowerLevelFormatter())
        self.logger = logging.getLogger("phcontrol")
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.addHandler(self.handler)
        self.logger.setLevel(level)
        self.logger.propagate = False
        self.saved_showwarning = warnings.showwarning
        warnings.showwarning = self._show_warning

    def _show_warning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        text = " ".join(str(message).split())
        self.logger.warning("%s (%s)", text, category.__name__)

    def close(self) -> None:
        import warnings

        warnings.showwarning = self.saved_showwarning
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


class _LowerLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{_PROG}: {record.levelname.lower()}: {record.getMessage()}"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text


def _out(text: str) -> None:
    """Print a result line on stdout; a reader that went away is no error.

    When stdout is a pipe whose reader closed early (``phcontrol check
    m.safetensors --json | head``), the rest of the output is dropped and
    the command still ends with its own exit status.
    """
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit goes here
        os.close(devnull)


def _fail(message: str, code: int, err: BaseException | None, debug: bool) -> int:
    if debug and err is not None:
        traceback.print_exception(err, file=sys.stderr)
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``phcontrol`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 success, 1 the fit failed, 2 bad usage or bad
        data.

    Examples
    --------
    A log without its time column is refused before anything is read:

    >>> main(["identify", "log.csv", "--outputs", "y"])
    2
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        args = _build_parser().parse_args(args_list)
    except _UsageError as err:
        return _fail(_one_line(err), EXIT_USAGE, err, debug)
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    from . import _distributed

    # Under torchrun only rank 0 speaks; the others show errors only.
    diagnostics = _Diagnostics(args.verbose, args.quiet or not _distributed.is_main())
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "control":
            return _control(args)
        return _identify(args)
    except _UsageError as err:
        return _fail(_one_line(err), EXIT_USAGE, err, args.debug)
    except KeyboardInterrupt as err:
        return _fail("interrupted; nothing was written", 130, err, args.debug)
    finally:
        diagnostics.close()


def _load_data(args: argparse.Namespace) -> tuple[Any, str]:
    """Return the Log or Dataset asked for and a short name for it."""
    from . import datasets
    from .data import load_log

    log_only = [
        flag
        for flag, value in (
            ("--time", args.time),
            ("--dt", args.dt),
            ("--inputs", args.inputs),
            ("--outputs", args.outputs),
            ("--strict", args.strict or None),
            ("--max-bytes", args.max_bytes),
        )
        if value is not None
    ]
    if args.log is not None and args.dataset is not None:
        raise _UsageError("give either LOG or --dataset, not both")
    if args.log is None:
        if log_only:
            raise _UsageError(
                f"{', '.join(log_only)} describe{'s' if len(log_only) == 1 else ''} "
                "the columns of a LOG file; give LOG, or drop them to fit a "
                "bundled dataset"
            )
        name = args.dataset or "silverbox"
        try:
            return datasets.load(name), name
        except ValueError as err:  # unknown name; DataError for a damaged file
            raise _UsageError(f"--dataset: {_one_line(err)}") from err
    if (args.time is None) == (args.dt is None):
        got = "neither" if args.time is None else "both"
        raise _UsageError(
            f"LOG needs exactly one of --time COL (its time column) and --dt "
            f"SECONDS (its fixed step); got {got}"
        )
    if not args.outputs:
        raise _UsageError("LOG needs --outputs COL[,COL]: the measured columns to fit")
    extra = {} if args.max_bytes is None else {"max_bytes": args.max_bytes}
    log = load_log(
        args.log,
        time=args.time,
        dt=args.dt,
        inputs=args.inputs or (),
        outputs=args.outputs,
        strict=args.strict,
        **extra,
    )
    return log, Path(args.log).stem


_FIT_KEYS = (
    "first_stage",
    "lbfgs_steps",
    "iterations",
    "max_time",
    "substeps",
    "window",
    "batch_size",
)


def _fit_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"model": args.model, "seed": args.seed}
    for key in _FIT_KEYS:
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    return options


def _cli_words(message: str) -> str:
    """Write the fit options a library message names as the command's flags.

    ``phc.identify`` speaks of ``model='linear'`` and `` `window` ``; on the
    command line the same advice reads ``--model linear`` and ``--window``.
    """
    import re

    names = ("model", "seed", *_FIT_KEYS)
    pattern = "|".join(names)

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    message = re.sub(
        rf"(?<![\w`])({pattern})=(?:'([^']*)'|([\w.+-]+))",
        lambda m: f"{flag(m[1])} {m[2] if m[2] is not None else m[3]}",
        message,
    )
    return re.sub(rf"`({pattern})`", lambda m: flag(m[1]), message)


def _identify(args: argparse.Namespace) -> int:
    from . import _distributed
    from .errors import DataError, ModelFileError, NotSupportedError
    from .report import check_out_dir, report_dict, write_report

    try:
        data, name = _load_data(args)
    except (DataError, TypeError, ValueError) as err:
        if isinstance(err, DataError):
            for problem in err.problems:
                logging.getLogger(__name__).info("%s", problem)
        return _fail(_one_line(err), EXIT_USAGE, err, args.debug)
    out = Path(args.out) if args.out else Path("runs") / f"identify-{name}"
    checkpoint = out / CHECKPOINT_FILE
    created = not out.exists()
    _distributed.init()  # under torchrun: join the other processes
    is_main = _distributed.is_main()
    problem: FileExistsError | None = None
    try:
        if args.resume:  # every process reads the checkpoint
            if not checkpoint.is_file():
                raise FileExistsError(
                    f"--resume: there is no checkpoint {str(checkpoint)!r} to "
                    "continue; run without --resume to start a new fit"
                )
        elif is_main:  # rank 0 alone writes --out
            check_out_dir(out, force=args.force)
    except FileExistsError as err:
        problem = err
    if _distributed.any_true(problem is not None):  # all stop, or none
        if problem is None:
            return EXIT_USAGE  # the process that met the problem reports it
        return _fail(_one_line(problem), EXIT_USAGE, problem, args.debug)

    options = _fit_options(args)
    options.update(checkpoint=checkpoint, resume=args.resume)
    try:
        fit = _run_fit(data, options, quiet=args.quiet or not is_main)
    except (DataError, NotSupportedError, ModelFileError) as err:
        if not args.resume and is_main:
            _discard(checkpoint, created)
        return _fail(_cli_words(_one_line(err)), EXIT_USAGE, err, args.debug)
    except KeyboardInterrupt as err:  # after training: while simulating the tests
        where = str(checkpoint) if checkpoint.exists() else None
        return _fail(
            "interrupted; "
            + (
                f"the fit so far is in {where!r}: continue with --resume"
                if where
                else "nothing was written"
            ),
            EXIT_INTERRUPTED,
            err,
            args.debug,
        )
    except Exception as err:  # noqa: BLE001 - any failure inside the fit is status 1
        if not args.resume and is_main:
            _discard(checkpoint, created)
        return _fail(f"the fit failed: {_one_line(err)}", EXIT_FAILED, err, args.debug)

    dataset = data if not _is_log(data) else None
    interrupted = bool(fit.report.interrupted)
    if not is_main:  # the same model and report as rank 0, which writes them
        if interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if _fit_problem(report_dict(fit, dataset=dataset)) else 0
    try:
        # --force, --resume or an out directory checked empty above: the only
        # thing the fit itself put there is its checkpoint.
        write_report(
            fit,
            out,
            dataset=dataset,
            force=True,
            keep=(CHECKPOINT_FILE,) if interrupted else (),
        )
    except OSError as err:
        return _fail(
            f"cannot write the report to {str(out)!r}: {_one_line(err)}",
            EXIT_FAILED,
            err,
            args.debug,
        )
    doc = report_dict(fit, dataset=dataset)
    if args.json:
        _out(json.dumps({**doc, "out": str(out)}, indent=2, allow_nan=False))
    else:
        _print_summary(doc, out)
    if interrupted:
        return _fail(
            f"interrupted after {fit.report.settings.get('steps_run')} training "
            f"steps; the best model so far is in {str(out)!r}; continue with "
            "--resume",
            EXIT_INTERRUPTED,
            None,
            False,
        )
    problem = _fit_problem(doc)
    if problem:
        return _fail(
            f"{problem}; the report in {str(out)!r} shows it", EXIT_FAILED, None, False
        )
    return EXIT_OK


def _discard(checkpoint: Path, created: bool) -> None:
    """Remove a failed fit's checkpoint, and ``--out`` if the fit created it."""
    import contextlib

    checkpoint.unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):  # not empty: leave it alone
            checkpoint.parent.rmdir()


def _is_log(data: Any) -> bool:
    from .data import Log

    return isinstance(data, Log)


def _run_fit(data: Any, options: dict[str, Any], *, quiet: bool) -> Any:
    """Call :func:`phcontrol.identify` with a progress bar on stderr.

    The bar appears with the first training step, so an error found before
    fitting starts stays the only line on stderr.
    """
    from tqdm import tqdm

    from .identify import _default_first_stage, identify

    first = options.get("first_stage") or _default_first_stage(
        options.get("model", "mechanical")
    )
    if first is None:  # neural_ode: no physical parameters, no first stage
        stage_one = 0
    elif first == "lm":  # one step per window length
        stage_one = len(_fit_default("lm_lengths"))
    else:
        stage_one = options.get("lbfgs_steps", _fit_default("lbfgs_steps"))
    total = stage_one + options.get("iterations", _fit_default("iterations"))
    bars: list[Any] = []

    def bar() -> Any:
        if not bars:
            # Off a terminal (a log file, CI) the bar is redrawn at most every
            # 30 s, so a long fit still shows that it is alive without
            # flooding the log.
            bars.append(
                tqdm(
                    total=total,
                    desc="fitting",
                    unit="it",
                    file=sys.stderr,
                    disable=quiet,
                    mininterval=1.0 if sys.stderr.isatty() else 30.0,
                )
            )
        return bars[0]

    def progress(record: dict[str, Any]) -> None:
        if record.get("stage") == "simulate":
            bar().set_description("simulating the held-out data")
            bar().refresh()
            return
        if not bars and record.get("iteration", 1) > 1:  # a resumed fit
            bar().update(record["iteration"] - 1)
        bar().update(1)
        bar().set_description(f"fitting ({record.get('stage', '')})", refresh=False)
        shown = {"loss": f"{record.get('train_loss', math.nan):.3g}"}
        if "val_loss" in record:
            shown["val"] = f"{record['val_loss']:.3g}"
        bar().set_postfix(shown, refresh=False)

    try:
        return identify(data, callback=progress, **options)
    finally:
        if bars:
            bars[0].close()


def _fit_problem(doc: dict[str, Any]) -> str | None:
    """Name what makes a finished fit a failure, or return None."""
    for split, values in doc["metrics"].items():
        if values.get("rmse") is None:
            return f"the simulation of {split!r} is not finite"
        if values.get("converged") is False:
            return f"the simulation of {split!r} did not converge"
    return None


def _print_summary(doc: dict[str, Any], out: Path) -> None:
    unit = doc["unit"]
    published = doc.get("published", {})
    _out(f"simulation RMSE ({unit}):")
    for split, values in doc["metrics"].items():
        rmse = values.get("rmse")
        text = "not finite" if rmse is None else f"{rmse:#.4g}"
        refs = published.get(split, {})
        best = min(refs.items(), key=lambda kv: kv[1]) if refs else None
        extra = f"   (best published: {best[0]} {best[1]:.4g})" if best else ""
        _out(f"  {split:32s} {text}{extra}")
    _out(f"wrote {out / 'report.html'}")


_SS_SUFFIXES = (".npz", ".mat", ".json")


def _read_state_space(path: Path) -> tuple[Any, float]:
    """Return ``((A, B, C, D), dt)`` from an NPZ, MAT or JSON file."""
    import numpy as np

    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        elif suffix == ".mat":
            import scipy.io

            data = scipy.io.loadmat(path)
        else:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("the JSON document must be an object")
    except (OSError, ValueError) as err:
        raise _UsageError(
            f"cannot read {str(path)!r}: {_one_line(err)}; save A, B, C, D as "
            "arrays (np.savez, scipy.io.savemat or a JSON object)"
        ) from err
    missing = [k for k in "ABCD" if k not in data]
    if missing:
        raise _UsageError(
            f"{str(path)!r} must hold matrices A, B, C and D; missing "
            f"{', '.join(missing)}. Add them (and dt for discrete time)"
        )
    dt_raw = data.get("dt", 0.0)
    try:
        dt = float(np.asarray(dt_raw, dtype=float).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as err:
        raise _UsageError(
            f"{str(path)!r}: dt must be a number (0 for continuous time); "
            f"found {dt_raw!r}"
        ) from err
    return tuple(data[k] for k in "ABCD"), dt


def _check(args: argparse.Namespace) -> int:
    """Run ``phcontrol check``."""
    from .errors import ConvergenceError, NumericsError, PHControlError, SolverError
    from .passivity import check_passivity

    path = Path(args.system)
    if not path.is_file():
        raise _UsageError(
            f"MODEL_OR_SYSTEM {str(path)!r} does not exist; pass a .safetensors "
            "model or a .npz/.mat/.json state-space file"
        )
    suffix = path.suffix.lower()
    strict = args.strict
    try:
        if suffix == ".safetensors":
            from .io import load

            result = check_passivity(load(path), strict=strict)
        elif suffix in _SS_SUFFIXES:
            system, dt = _read_state_space(path)
            result = check_passivity(system, dt=dt, strict=strict)
        else:
            raise _UsageError(
                f"MODEL_OR_SYSTEM {str(path)!r} has the unknown suffix "
                f"{suffix!r}; use .safetensors, .npz, .mat or .json"
            )
    except (SolverError, NumericsError, ConvergenceError) as err:
        # --strict: a numerical doubt is a failed check, not bad input.
        return _fail(f"{str(path)!r}: {_one_line(err)}", EXIT_FAILED, err, args.debug)
    except (PHControlError, ValueError, TypeError) as err:
        raise _UsageError(f"{str(path)!r}: {_one_line(err)}") from err
    if args.json:
        doc = {"file": str(path), **result.to_dict()}
        _out(json.dumps(doc, indent=2))
    else:
        _out(f"{path.name}: {result.verdict.replace('_', ' ')} ({result.method})")
        _out(f"  {result.message}")
    return EXIT_OK if result.verdict == "passive" else EXIT_FAILED


def _control(args: argparse.Namespace) -> int:
    """Run ``phcontrol control``."""
    from ._cli_control import UsageError, run

    try:
        code, doc = run(args)
    except UsageError as err:
        return _fail(_one_line(err), EXIT_USAGE, err, args.debug)
    if args.json:
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        checks = ", ".join(f"{k} {v}" for k, v in doc["checks"].items())
        print(f"{doc['controller']}: {doc['verdict'].replace('_', ' ')} ({checks})")
        print(f"  final error {doc['final_error']:.3g}; wrote {doc['out']}")
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
