"""The ``multilevel`` command: a thin argparse front end over the public API.

    multilevel fit DATA "FORMULA" [--family F] [--weights COL] [--prior "sigma=exponential(rate=0.1)" ...]
                   [--chains N --draws N --warmup N --seed N --sampler S] [--out fit.nc]
                   [--plots DIR [--lines-x COL [--lines-color COL]]]
    multilevel summary fit.nc
    multilevel predict fit.nc NEW [--kind mean|linear|posterior_predictive]
                   [--new-groups population|zero|error] [--prob 0.95] [--seed 0] [--out pred.csv]
    multilevel hypothesis fit.nc "x > 0" ["cheese[B] - cheese[A] = 0" ...] [--prob 0.95]
                   [--scope standard|ranef|coef --group G]
    multilevel r2 fit.nc [--loo] [--prob 0.95] [--seed 0]
    multilevel effects fit.nc EFFECT [--categorical] [--prob 0.95] [--plot effects.png]
                   [--condition COL=V1,V2 ...] [--group-effects]
    multilevel demo [--example cheese|face] [--plots DIR]

DATA and NEW are tables with a header row: delimited text (the delimiter, tab,
comma or semicolon, is detected; LF, CRLF and CR line endings are read alike)
or Parquet (``.parquet``, which needs pyarrow).

Errors print one line to standard error and exit with status 2. Compiled
programs are kept in a persistent cache, as by every fit (``$MULTILEVEL_CACHE_DIR``, by default
``~/.cache/multilevel/jax``; set it empty to disable), so a second run of the
same model skips JAX's compilation.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path
from typing import Iterable, NamedTuple

import pandas as pd

from . import api, datasets
from .compilation_cache import enable_compilation_cache
from .errors import DataError, MultilevelError
from .formula import Formula
from .inference import SAMPLERS
from .model.families import FAMILIES
from .results import compare, load
from .results.files import write_atomic
from .results.predict import KINDS, NEW_GROUPS


#: Delimiters of text tables, as detected, and how a message names them.
DELIMITERS = {"\t": "tab", ",": "comma", ";": "semicolon"}
#: Characters of a text table read to detect its delimiter.
SNIFF_CHARS = 1 << 16


class Table(NamedTuple):
    """A data file as read: the data, and how they were read (for messages)."""

    data: pd.DataFrame
    path: Path
    how: str


def read_table(path: Path) -> Table:
    """Read a data file: Parquet (``.parquet``), else delimited text.

    The delimiter of a text file (tab, comma or semicolon) is detected from its
    first lines, and LF, CRLF and CR line endings are all read as line ends.

    Raises
    ------
    DataError
        When there is no file at ``path``, it cannot be read or parsed, or a
        Parquet file needs pyarrow and pyarrow is not installed.
    """
    if not path.exists():
        raise DataError(f"no data file at {path}")
    if path.suffix.lower() == ".parquet":
        return Table(_read_parquet(path), path, "Parquet")
    try:
        with open(path, newline=None, encoding="utf-8-sig") as stream:  # newline=None: \n, \r\n and \r
            delimiter = _detect_delimiter(stream.read(SNIFF_CHARS))
            how = f"{DELIMITERS[delimiter]}-separated" if delimiter else \
                "no tab, comma or semicolon in its first lines"
            stream.seek(0)
            data = pd.read_csv(stream, sep=delimiter or ",")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text: save it as UTF-8 (or as Parquet)") from None
    except OSError as exc:  # a directory, a file that may not be read
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: give a table with a header row") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot read {path} ({how}): {exc}") from None
    return Table(data, path, how)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise DataError(f"reading the Parquet file {path} needs pyarrow: pip install 'multilevel[dask]' "
                        "(or pyarrow), or give the data as CSV") from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"cannot read {path} as Parquet: {exc}") from None


def _detect_delimiter(sample: str) -> str | None:
    """The delimiter of the text table that begins with ``sample``: tab, comma, semicolon,
    or None when none of them separates its fields (a table of one column).

    Only whole lines of the sample are considered.
    """
    if len(sample) == SNIFF_CHARS and "\n" in sample:
        sample = sample[:sample.rindex("\n") + 1]
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return None


def require_columns(table: Table, names: Iterable[str], named_by: str) -> None:
    """Raise DataError when a column in ``names`` is not in the table, saying what was read.

    A table read as one column whose name holds several names run together is
    the sign of a delimiter that was not detected; the message shows it.
    """
    missing = [name for name in names if name not in table.data.columns]
    if not missing:
        return
    columns = [str(c) for c in table.data.columns]
    shown = ", ".join(map(repr, columns[:20])) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")
    message = (f"{table.path.name} has no column {', '.join(map(repr, missing))} (named by {named_by}); "
               f"read {len(columns)} column{'s' if len(columns) != 1 else ''} from it ({table.how}): {shown}")
    if len(columns) == 1 and table.how != "Parquet":
        message += ("; if that is several names run together, the file's delimiter is not a tab, comma or "
                    "semicolon: save it with one of those")
    raise DataError(message)


def _parse_prior(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=PRIOR such as 'sigma=exponential(rate=0.1)', got {text!r}")
    return key.strip(), value.strip()


def _add_sampler_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    parser.add_argument("--draws", type=int, default=1000, help="draws kept per chain (default 1000)")
    parser.add_argument("--warmup", type=int, default=1000, help="warmup iterations per chain (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--sampler", default="auto", choices=SAMPLERS,
                        help="sampler (default auto: the best one for the model)")
    parser.add_argument("--target-accept", type=float, default=0.8, help="NUTS target acceptance (default 0.8)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress bars (default: when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multilevel", description="Bayesian multilevel regression "
                                     "from lme4/brms formulas.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit a model to a data file and print its summary",
                              description="Fit a model to a data file and print its summary.")
    fit.add_argument("data", type=Path, help="table with a header row: text delimited by tab, comma or "
                     "semicolon (detected), or a .parquet file")
    fit.add_argument("formula", help='model formula, e.g. "y ~ x + (1 + x | g)"')
    fit.add_argument("--dpar", action="append", default=[], metavar="FORMULA",
                     help="a formula for a parameter of the family, e.g. 'sigma ~ x + (1 | g)' (distributional "
                          "regression, on the parameter's link scale); repeatable")
    fit.add_argument("--family", default="gaussian",
                     help=f"response family: {', '.join(FAMILIES)} (default gaussian), optionally with a "
                     "link, e.g. 'bernoulli(probit)', or 'student_t(nu=4)'")
    fit.add_argument("--prior", action="append", type=_parse_prior, default=[], metavar="KEY=PRIOR",
                     help="a prior, e.g. 'sigma=exponential(rate=0.1)' or 'b=normal(0, 10)'; repeatable")
    _add_sampler_options(fit)
    fit.add_argument("--weights", metavar="COL", help="a column of weights, as glmer's weights =: the trials of "
                     "a binomial proportion response (incidence/size with --weights size), else each row's "
                     "likelihood weight")
    fit.add_argument("--out", type=Path, help="write the fit to this netCDF file")
    fit.add_argument("--posterior-predictive", action="store_true",
                     help="also draw replicates of the response at every row, kept in the fit (group "
                          "posterior_predictive of --out)")
    fit.add_argument("--group-effects", action="store_true", help="print the whole summary table, every group "
                     "effect included (default: brms's display, population- and group-level parameters)")
    fit.add_argument("--plots", type=Path, metavar="DIR", help="write trace.png, effects.png (models with "
                     "group terms), ppc.png and, with --lines-x, lines.png into DIR")
    fit.add_argument("--lines-x", metavar="COL", help="with --plots: x column of the fitted-lines plot")
    fit.add_argument("--lines-color", metavar="COL", help="with --lines-x: colour lines by this column")

    summary = commands.add_parser("summary", help="print the summary of a saved fit",
                                  description="Print the summary of a fit saved with --out.")
    summary.add_argument("fit", type=Path, help="netCDF file written by 'multilevel fit --out'")
    summary.add_argument("--group-effects", action="store_true", help="print every group effect too")
    summary.add_argument("--style", default="default", choices=("default", "coda"), help="table style")

    predict = commands.add_parser("predict", help="predict for new rows from a saved fit, as CSV",
                                  description="Predict for the rows of a data file from a fit saved with "
                                  "'multilevel fit --out': the rows with mean, sd and interval columns added.")
    predict.add_argument("fit", type=Path, help="netCDF file written by 'multilevel fit --out'")
    predict.add_argument("data", type=Path, help="table of new rows, delimited text or .parquet (predictors, "
                         "grouping columns, and the columns of any offset and, for a binomial model, of the "
                         "trials)")
    predict.add_argument("--kind", default="mean", choices=KINDS,
                         help="mean (expected response, default), linear (linear predictor), "
                         "posterior_predictive (new responses) or probs (an ordinal model's category "
                         "probabilities, one row per new row and category)")
    predict.add_argument("--new-groups", default="population", choices=NEW_GROUPS,
                         help="levels not seen in fitting: population (draw new effects, default), "
                         "zero (no effect) or error")
    predict.add_argument("--prob", type=float, default=0.95, help="probability of the interval (default 0.95)")
    predict.add_argument("--dpar", metavar="PARAM", help="predict this parameter of the family (e.g. sigma) "
                         "instead of the response, with --kind mean (its value) or linear (its link scale)")
    predict.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    predict.add_argument("--out", type=Path, help="write the CSV here, atomically (default: standard output)")

    hypothesis = commands.add_parser("hypothesis", help="test hypotheses about the parameters of a saved fit",
                                     description="Test hypotheses about the parameters of a fit saved with "
                                     "'multilevel fit --out', as brms's hypothesis(): each compares two expressions "
                                     "of parameters (named as in the summary) with <, > or =.")
    hypothesis.add_argument("fit", type=Path, help="netCDF file written by 'multilevel fit --out'")
    hypothesis.add_argument("hypotheses", nargs="+", metavar="HYPOTHESIS",
                            help='e.g. "x > 0", "cheese[B] - cheese[A] = 0", "sd(Intercept|g) > sigma"')
    hypothesis.add_argument("--prob", type=float, default=0.95, help="probability of the interval (default 0.95)")
    hypothesis.add_argument("--scope", choices=("standard", "ranef", "coef"), default="standard",
                            help="standard (the parameters, default); ranef or coef: test at each level of --group, "
                            "naming its effect columns (each level's deviations, or coefficients)")
    hypothesis.add_argument("--group", help="the grouping factor of --scope ranef or coef")

    r2 = commands.add_parser("r2", help="Bayesian R-squared of a saved fit",
                             description="Bayesian R-squared (Gelman et al. 2019) of a fit saved with "
                             "'multilevel fit --out', or with --loo the LOO-R-squared.")
    r2.add_argument("fit", type=Path, help="netCDF file written by 'multilevel fit --out'")
    r2.add_argument("--loo", action="store_true", help="LOO-R-squared, from the stored pointwise log-likelihood")
    r2.add_argument("--prob", type=float, default=0.95, help="probability of the interval (default 0.95)")
    r2.add_argument("--seed", type=int, default=0, help="seed of the bootstrap weights of --loo (default 0)")

    effects = commands.add_parser("effects", help="conditional effects of a predictor of a saved fit, as CSV",
                                  description="Conditional effects of a fit saved with 'multilevel fit --out', as "
                                  "brms's conditional_effects(): the expected response over a grid of EFFECT (or of "
                                  "x:z), the other predictors at their means or reference levels, without group "
                                  "effects; the grid with mean, sd and interval columns is written as CSV.")
    effects.add_argument("fit", type=Path, help="netCDF file written by 'multilevel fit --out'")
    effects.add_argument("effect", help="a predictor, or two as x:z (one line per value of z)")
    effects.add_argument("--categorical", action="store_true", help="an ordinal model's category probabilities")
    effects.add_argument("--prob", type=float, default=0.95, help="probability of the interval (default 0.95)")
    effects.add_argument("--plot", type=Path, metavar="PNG", help="also write the plot to this PNG file")
    effects.add_argument("--condition", action="append", default=[], metavar="COL=V1,V2",
                         help="hold COL at each value given, one panel per value (repeatable: one panel per "
                         "combination); e.g. --condition g=a,b --group-effects for the effect within levels of g")
    effects.add_argument("--group-effects", action="store_true",
                         help="include the group effects (brms's re_formula = NULL; default: none, re_formula = NA)")

    kfold = commands.add_parser("kfold", help="K-fold cross-validation of a saved fit (refits it per fold)",
                                description="K-fold cross-validation of a fit saved with 'multilevel fit --out', "
                                "as brms's kfold(): the model is refitted without each fold (same priors, sampler "
                                "and settings) and the held-out rows are scored by their log predictive density.")
    kfold.add_argument("fit", type=Path, help="netCDF file written by 'multilevel fit --out'")
    kfold.add_argument("data", type=Path, help="the data file the model was fitted to")
    kfold.add_argument("-K", "--K", type=int, default=10, dest="K", help="number of random folds (default 10)")
    kfold.add_argument("--group", metavar="COL", help="leave one group out: one fold per level of COL (K ignored)")
    kfold.add_argument("--seed", type=int, default=0, help="seed of the folds and of new groups' effects (default 0)")
    kfold.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show a progress bar over the folds (default: when stderr is a terminal)")

    demo = commands.add_parser("demo", help="run a worked example on simulated data (cheese or face)",
                               description="--example cheese (default): fit the four varying-intercept/slope "
                               "models of the cheese analysis to simulated ratings (ml.datasets.simulate_ratings). "
                               "--example face: the Duke Forest FACE tree-growth workflow on simulated data "
                               "(ml.datasets.simulate_growth): fixed- and random-effects growth models with vague "
                               "priors, fitted by Gibbs sampling, coda summaries, DIC comparison and plots.")
    demo.add_argument("--example", default="cheese", choices=("cheese", "face"), help="which worked example")
    demo.add_argument("--plots", type=Path, default=Path("face-plots"), metavar="DIR",
                      help="--example face: directory for the plots (default face-plots)")
    _add_sampler_options(demo)
    demo.set_defaults(draws=2000, warmup=1000)
    return parser


def _print_fit(fit, group_effects: bool) -> None:
    """brms's display (the group effects counted, not listed), or with ``group_effects`` the
    header and the whole summary table."""
    if not group_effects:
        print(fit)
        return
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", None):
        print(fit.header())
        print()
        print(fit.summary().round(3).to_string())


def _sampler_kwargs(args) -> dict:
    return dict(chains=args.chains, draws=args.draws, warmup=args.warmup, seed=args.seed,
                sampler=args.sampler, target_accept=args.target_accept, progress=args.progress)


def _run_fit(args) -> None:
    if (args.lines_x or args.lines_color) and not args.plots:
        raise DataError("--lines-x and --lines-color need --plots DIR")
    if args.lines_color and not args.lines_x:
        raise DataError("--lines-color needs --lines-x COL")
    table = read_table(args.data)
    formula = Formula(args.formula, *args.dpar)
    require_columns(table, formula.parse(list(table.data.columns)).variables(), "the formula")
    require_columns(table, [args.weights] if args.weights else [], "--weights")
    require_columns(table, [c for c in (args.lines_x, args.lines_color) if c], "--lines-x/--lines-color")
    fit = api.fit(formula, table.data, family=args.family, priors=dict(args.prior), weights=args.weights,
                  posterior_predictive=args.posterior_predictive, **_sampler_kwargs(args))
    _print_fit(fit, args.group_effects)
    if args.out:
        fit.save(args.out)
        print(f"\nsaved to {args.out}")
    if args.plots:
        from .results.plots import write_plots  # matplotlib, imported only to plot
        paths = write_plots(fit, args.plots, lines_x=args.lines_x, lines_color=args.lines_color)
        print("\nplots written: " + ", ".join(map(str, paths)))


def _run_summary(args) -> None:
    fit = load(args.fit)
    if args.style == "coda":
        print(fit.summary(style="coda", group_effects=args.group_effects).round(4).to_string())
    else:
        _print_fit(fit, args.group_effects)


def _run_predict(args) -> None:
    if not 0 < args.prob < 1:
        raise DataError(f"--prob must be between 0 and 1, got {args.prob}")
    new_rows = read_table(args.data)
    fit = load(args.fit)
    require_columns(new_rows, fit.info.spec.variables(response=False), "the formula")
    table = fit.predict(new_rows.data, kind=args.kind, new_groups=args.new_groups,
                        prob=args.prob, seed=args.seed, dpar=args.dpar)
    if args.out is None:
        table.to_csv(sys.stdout, index=False)
        return
    write_atomic(args.out, lambda tmp: table.to_csv(tmp, index=False))
    print(f"{len(table)} predictions ({args.kind}) written to {args.out}")


def _print_table(table: pd.DataFrame) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(table.round(4).to_string())


def _run_hypothesis(args) -> None:
    table = load(args.fit).hypothesis(args.hypotheses, prob=args.prob, scope=args.scope, group=args.group)
    keys = ["hypothesis"] if args.scope == "standard" else ["group", "level", "hypothesis"]
    _print_table(table.reset_index(drop=True).set_index(keys))


def _conditions(options: list[str]) -> dict[str, list]:
    """``["g=a,b", "w=0"]`` as ``{"g": ["a", "b"], "w": [0]}``: numbers where every value of a
    column reads as one (whole numbers as int), else strings."""
    conditions = {}
    for option in options:
        name, equals, values = option.partition("=")
        if not equals or not name.strip() or not values.strip():
            raise DataError(f"--condition {option!r}: write COL=V1,V2 (e.g. --condition g=a,b)")
        parts = [v.strip() for v in values.split(",")]
        try:
            numbers = [float(v) for v in parts]
            conditions[name.strip()] = [int(v) if v.is_integer() else v for v in numbers]
        except ValueError:
            conditions[name.strip()] = parts
    return conditions


def _run_effects(args) -> None:
    effects = load(args.fit).conditional_effects(args.effect, categorical=args.categorical, prob=args.prob,
                                                 conditions=_conditions(args.condition) or None,
                                                 re_formula=None if args.group_effects else "~ 0")
    effects.data.to_csv(sys.stdout, index=False)
    if args.plot:
        from .results.plots import save_figure  # matplotlib, imported only to plot
        save_figure(effects.figure, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)


def _run_r2(args) -> None:
    _print_table(load(args.fit).r2(prob=args.prob, loo=args.loo, seed=args.seed))


def _run_kfold(args) -> None:
    print(load(args.fit).kfold(read_table(args.data).data, K=args.K, group=args.group, seed=args.seed,
                               progress=args.progress))


def _run_demo(args) -> None:
    if args.example == "face":
        _run_face_demo(args)
        return
    data = datasets.simulate_ratings(args.seed)
    print(f"Simulated ratings: {len(data)} rows, 4 products x 20 raters (2 backgrounds) x 2 replicates\n")
    for number, (title, formula) in datasets.CHEESE_MODELS.items():
        print(f"=== Model {number}: {title} ===")
        fit = api.fit(formula, data, priors=datasets.cheese_priors(data, number), **_sampler_kwargs(args))
        _print_fit(fit, group_effects=False)
        print()


def _run_face_demo(args) -> None:
    """The FACE workflow on simulated data: describe, fit by Gibbs, compare by DIC, plot."""
    data = datasets.simulate_growth(args.seed)
    print(f"Simulated FACE-like growth: {len(data)} yearly records of {data['tree'].nunique()} trees "
          "(ml.datasets.simulate_growth)\n")
    print("Trees by treatment (trt = 1: elevated CO2):")
    print(data.groupby("trt")["tree"].nunique().to_string(), "\n")
    print("Growth by year: median and 5% / 95% quantiles of dnow (cm/yr)")
    print(data.groupby("t")["dnow"].quantile([0.05, 0.5, 0.95]).unstack().round(3).to_string(), "\n")
    kwargs = _sampler_kwargs(args)
    if kwargs["sampler"] == "auto":
        kwargs["sampler"] = "gibbs"
    fits = {}
    for name, formula in datasets.FACE_MODELS.items():
        print(f"=== {name}: {formula} (vague priors, {kwargs['sampler']}) ===")
        fits[name] = api.fit(formula, data, priors=datasets.face_priors(name), **kwargs)
        print(fits[name].header())
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(fits[name].summary(style="coda", group_effects=False).round(4).to_string(), "\n")
        from .results.plots import write_plots  # matplotlib, imported only to plot
        paths = write_plots(fits[name], args.plots / name, lines_x="diam", lines_color="trt")
        print("plots written: " + ", ".join(map(str, paths)) + "\n")
    print("Model comparison by DIC (lower is better; p_D: effective number of parameters):")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(compare(fits, ic="dic").round(1).to_string())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"multilevel: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    enable_compilation_cache()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            {"fit": _run_fit, "summary": _run_summary, "predict": _run_predict,
             "hypothesis": _run_hypothesis, "r2": _run_r2, "effects": _run_effects, "kfold": _run_kfold,
             "demo": _run_demo}[args.command](args)
    except MultilevelError as exc:
        print(f"multilevel: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
