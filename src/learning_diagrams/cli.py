"""The command line, ``learning-diagrams`` (or ``python -m learning_diagrams``).

Five subcommands, each with ``--help``::

    learning-diagrams pairs FILE [--env MODULE:ATTR]
    learning-diagrams draw FILE [-o OUT] [--no-pairs] [--title TEXT] [--env MODULE:ATTR]
    learning-diagrams train CONFIG [--epochs N] [--device D] [--log-dir DIR]
                                   [--checkpoint-dir DIR] [--resume DIR]
    learning-diagrams plot RUN [RUN ...] [-o OUT] [--stages NAME,...] [--split train|eval]
    learning-diagrams schema

``plot`` draws the loss terms of a run again from the ``log.jsonl`` that
``ld.fit`` writes (``RUN`` is the file or its folder), as ``losses.png`` beside it.

``schema`` prints the ACSet schema of ``.json`` diagram files, in Catlab's
schema-JSON layout (:mod:`learning_diagrams.io.acset`), for another ACSet
reader (Catlab.jl, the Python ``acsets`` package) to read them with.

``FILE`` is a diagram file (see :mod:`learning_diagrams.io.files`); it is read as
data, never run. ``--env MODULE:ATTR`` names the models and data sets the file
refers to: ``ATTR`` is a mapping, or a function returning one, in the Python
module ``MODULE`` (imported from the working directory or ``sys.path``).
Without it, ``pairs`` and ``draw`` read the structure alone: each name stands
for itself (an :class:`Unbound`), library losses (``mse``, ``kl_div(T=2.0)``)
are themselves, and a loss the file takes from an env is read as asymmetric
(a note on stderr says so). Saved weights are not loaded by ``pairs`` and ``draw``.

``CONFIG`` is a YAML (``.yaml``/``.yml``) or JSON file::

    diagram: distillation.yaml          # the diagram file
    env: my_project.setup:make_env      # a function returning {name: model or data}
    train:                              # options of ld.fit
      epochs: 10
      lr: 0.001
      policy: max_size_cycle
      optimizer: AdamW                  # a torch.optim class, or "module:attr"
      eval_data: {N: test_loader}       # names from the env
      metrics: {Y: accuracy}
      log_dir: runs/distil
      checkpoint_dir: checkpoints/distil

Paths in the config are relative to the config's folder, which is also put on
``sys.path`` while the env module is imported; paths given on the command line
are relative to the working directory. Command-line options override the
config's ``train`` options. The config is read as plain data, as diagram files
are (YAML anchors and aliases refused), and each ``train`` value is checked
before training starts: its type against :class:`~learning_diagrams.training.Trainer`'s
fields, ``device`` against the machine, and the optimiser, learning rates,
``optimizer_kwargs`` and scheduler by building them once on a probe parameter.

**A training config is code; a diagram file is data.** ``learning-diagrams
train`` *imports* what the config names, and runs it: the ``env`` module (from
the config's folder, the working directory, then ``sys.path``) and the function
it names, an ``optimizer`` or ``scheduler`` given as ``MODULE:ATTR`` (imported
the same way), and ``torch.optim`` for an optimiser given by name. Run only
configs you trust, as you would run only scripts you trust. Loading the
diagram file itself (:func:`learning_diagrams.load`, and ``pairs`` and ``draw``
without ``--env``) imports and runs nothing from it: it reads plain data and
looks names up in the env.

Every error the library reports (a :class:`~learning_diagrams.core.errors.DiagramError`:
a bad file, config value or diagram) is printed as one ``error:`` line on
stderr, with exit status 2, as for a bad command line; a file that cannot be
read or written (an :class:`OSError`) exits with status 1. Neither prints a
traceback; an exception raised by the user's own code (the env module, a
model) is not the library's to report, and keeps its traceback.

>>> import pathlib, tempfile
>>> file = pathlib.Path(tempfile.mkdtemp()) / "d.yaml"
>>> _ = file.write_text('''
... spaces: {N: {data: train_ds}, X: {}, Y: {loss: mse}}
... maps: {f: {src: N, tgt: X}, g: {src: X, tgt: Y}, h: {src: N, tgt: Y}}
... relations: [[f·g, h, 0.5]]
... ''', encoding="utf-8")
>>> main(["pairs", str(file)])
f·g ≤ h  (at Y, weight 0.5)
0
"""

from __future__ import annotations

import argparse
import collections.abc as abc
import contextlib
import dataclasses
import importlib
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .core.errors import ConfigError, DiagramError
from .core.losses import LIBRARY

__all__ = ["main", "Unbound", "load_env", "read_config"]

PROG = "learning-diagrams"


# -----------------------------------------------------------------------------
# The parser


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Learning diagrams from the command line: list a diagram's compiled pairs, draw it, or train it.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    env_help = (
        "the models and data the file names: MODULE:ATTR, where ATTR is a mapping or a "
        "function returning one (optional: the structure is read without them)"
    )

    pairs = commands.add_parser(
        "pairs",
        help="print the compiled parallel pairs of a diagram file",
        description="Print the pairs of parallel paths that compile to loss terms, one per line "
        "with their vertex and weight. Exit status 2, with the reason, if the diagram does not compile.",
    )
    pairs.add_argument("file", metavar="FILE", help="a diagram file")
    pairs.add_argument("--env", metavar="MODULE:ATTR", help=env_help)
    pairs.set_defaults(run=_pairs)

    draw = commands.add_parser(
        "draw",
        help="draw a diagram file (SVG, PNG, PDF or DOT)",
        description="Draw a diagram, its compiled pairs coloured pair by pair. The format follows "
        "OUT's suffix (.svg, .png, .pdf, .dot); .dot needs no Graphviz, the others need its dot program.",
    )
    draw.add_argument("file", metavar="FILE", help="a diagram file")
    draw.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="the file to write, or - for SVG on stdout (default: FILE with the suffix .svg)",
    )
    draw.add_argument("--format", help="the output format, overriding OUT's suffix (svg, png, pdf, dot, ...)")
    draw.add_argument(
        "--no-pairs",
        dest="pairs",
        action="store_false",
        help="draw the structure only, without colouring the compiled pairs",
    )
    draw.add_argument("--title", help="a caption for the drawing")
    draw.add_argument("--env", metavar="MODULE:ATTR", help=env_help)
    draw.set_defaults(run=_draw)

    train = commands.add_parser(
        "train",
        help="train a diagram as a config file says",
        description="Train the diagram a config file names with ld.fit, then print the history's "
        "summary. The config (YAML or JSON) has the keys diagram (a diagram file), env (MODULE:ATTR, "
        "a function returning the models and data) and train (options of ld.fit: epochs, lr, policy, "
        "optimizer, eval_data, metrics, log_dir, checkpoint_dir, ...). A config is code: the env module, "
        "and an optimizer or scheduler given as MODULE:ATTR, are imported and run; run only configs you trust.",
    )
    train.add_argument("config", metavar="CONFIG", help="a YAML or JSON training config")
    train.add_argument("--epochs", type=int, metavar="N", help="epochs (overrides train.epochs)")
    train.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, ... (overrides train.device)")
    train.add_argument("--log-dir", metavar="DIR", help="where logs go (overrides train.log_dir)")
    train.add_argument("--checkpoint-dir", metavar="DIR", help="where checkpoints go (overrides train.checkpoint_dir)")
    train.add_argument("--resume", metavar="DIR", help="resume from a checkpoint or checkpoint folder")
    train.set_defaults(run=_train)

    plot = commands.add_parser(
        "plot",
        help="plot the losses of a run's log (log.jsonl) as a PNG",
        description="Plot every loss term of a run, one panel per stage, from the log.jsonl that ld.fit "
        "writes to its log_dir. RUN is that file or its folder; each one's plot is written beside it "
        "(losses.png, or -o OUT for a single RUN) and its path printed.",
    )
    plot.add_argument("runs", nargs="+", metavar="RUN", help="a log.jsonl, or a folder holding one")
    plot.add_argument("-o", "--output", metavar="OUT", help="the PNG to write (one RUN only; default RUN's losses.png)")
    plot.add_argument(
        "--stages",
        type=lambda text: text.split(","),
        metavar="NAME,NAME,...",
        help="titles of the stages' panels, in order (the log holds stage numbers only)",
    )
    plot.add_argument("--split", choices=("train", "eval"), default="train", help="the records to plot (default train)")
    plot.set_defaults(run=_plot)

    schema = commands.add_parser(
        "schema",
        help="print the ACSet schema of .json diagram files (Catlab's schema JSON)",
        description="Print the schema that .json diagram files are ACSets of, in the layout of Catlab's "
        "generate_json_acset_schema (Ob, Hom, AttrType, Attr), for Catlab.jl or the Python acsets package "
        "to read diagram files with.",
    )
    schema.set_defaults(run=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except DiagramError as err:  # bad input: a file, a config value, a diagram (2, as argparse's usage errors)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the system: a file missing or unwritable
        print(f"error: {_os_message(err) if err.filename else err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _os_message(err: OSError) -> str:
    return f"{err.strerror or type(err).__name__}: {err.filename}"


# -----------------------------------------------------------------------------
# The commands


class Unbound:
    """Stands for a name of a diagram file that no env binds, so its structure can be read.

    Enough to list pairs and draw: it is data (so its vertex indexes) and a
    callable (so it can sit on an edge), and running it says what is missing.
    A loss read this way is a plain callable, hence asymmetric.
    """

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError(f"{self.__name__!r} is not bound to anything: pass --env MODULE:ATTR")

    def __repr__(self) -> str:
        return f"Unbound({self.__name__!r})"


class _StandIns(Mapping[str, Any]):
    """An env that has every name, as an :class:`Unbound`, except the library's losses.

    Library loss names are left to the file reader, which knows them (``mse``,
    ``kl_div(T=2.0)``, ...), so they keep their symmetry.
    """

    def __init__(self) -> None:
        self.given: dict[str, Unbound] = {}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name not in _LIBRARY_LOSSES and not name.startswith("kl_div(")

    def __getitem__(self, name: str) -> Unbound:
        if name not in self:
            raise KeyError(name)
        return self.given.setdefault(name, Unbound(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)


#: The names that stand for library losses in a file: their keys and their own names (``kl_div(T=1.0)``).
_LIBRARY_LOSSES = frozenset(LIBRARY) | {loss.name for loss in LIBRARY.values()}


def _load(file: str, env_spec: str | None) -> Any:
    """The diagram of ``file``, its names bound from ``--env``, or stood in for when there is none."""
    from .io import load

    if env_spec:
        return load(file, env=load_env(env_spec), weights=False)
    diagram = load(file, env=_StandIns(), weights=False)
    for space in diagram.spaces.values():
        if space.loss is not None and isinstance(space.loss.fn, Unbound):
            print(
                f"note: the loss {space.loss.name!r} of vertex {space.name!r} comes from an env, so it is "
                f"read as asymmetric; pass --env MODULE:ATTR to use it",
                file=sys.stderr,
            )
    return diagram


def _pairs(args: argparse.Namespace) -> int:
    diagram = _load(args.file, args.env)
    pairs = diagram.parallel_pairs()
    if not pairs:
        raise ConfigError(
            f"{args.file}: no pair of parallel paths compiles (from a vertex with data to a "
            f"vertex with a loss); the diagram has nothing to train"
        )
    for pair in pairs:
        print(pair)
    return 0


def _draw(args: argparse.Namespace) -> int:
    from .io import draw

    diagram = _load(args.file, args.env)
    if args.pairs:
        try:
            diagram.parallel_pairs()
        except DiagramError as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"note: drawn without pairs, the diagram does not compile: {first}", file=sys.stderr)
    if args.output == "-":
        fmt = (args.format or "svg").lower()
        if fmt not in ("svg", "dot", "gv"):
            raise ConfigError(
                f"-o - writes text to stdout, so the format must be svg or dot, not {fmt!r}; "
                f"give a file name to write {fmt}"
            )
        sys.stdout.write(draw(diagram, format=fmt, pairs=args.pairs, title=args.title))
        return 0
    output = args.output or str(Path(args.file).with_suffix(".svg"))
    written = draw(diagram, output, format=args.format, pairs=args.pairs, title=args.title)
    print(written)
    return 0


#: Keys a training config may have.
CONFIG_KEYS = ("diagram", "env", "train")
#: ``train`` options that are paths (resolved against the config's folder).
PATH_OPTIONS = ("log_dir", "checkpoint_dir")


def _plot(args: argparse.Namespace) -> int:
    import learning_diagrams as ld

    if args.output is not None and len(args.runs) > 1:
        raise ConfigError(
            f"-o names one file, but {len(args.runs)} runs were given; leave it out to write each beside its log"
        )
    logs = [Path(run) / "log.jsonl" if Path(run).is_dir() else Path(run) for run in args.runs]
    missing = [str(log) for log in logs if not log.is_file()]
    if missing:  # every run checked before any plot is written
        raise ConfigError(f"no log to plot at {', '.join(missing)}: give a log.jsonl or the log_dir of an ld.fit run")
    for log in logs:
        history = ld.History.from_jsonl(log)
        print(history.plot(args.output or log.with_name("losses.png"), split=args.split, stages=args.stages))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .io import schema_text

    sys.stdout.write(schema_text())
    return 0


def _train(args: argparse.Namespace) -> int:
    import learning_diagrams as ld

    from .io import load

    config_path = Path(args.config)
    config = read_config(config_path)
    base = config_path.parent
    options = _train_options(config.get("train") or {}, config_path)
    for option in ("epochs", "device"):
        if getattr(args, option) is not None:
            options[option] = getattr(args, option)
    _check_types(options, config_path)
    env = load_env(config["env"], base=base)
    diagram = load(base / config["diagram"], env=env)
    options = _resolve_options(options, env, base, config_path)
    if args.log_dir is not None:
        options["log_dir"] = args.log_dir
    if args.checkpoint_dir is not None:
        options["checkpoint_dir"] = args.checkpoint_dir
    _check_values(options, config_path)
    history = ld.fit(diagram, resume=args.resume, **options)
    print(history.summary())
    return 0


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """A training config read from YAML or JSON (as plain data, by the readers of diagram files), its keys checked."""
    from .io.acset import read_json
    from .io.config import read_yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text: {err.reason} at byte {err.start}") from err
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            config = read_yaml(text)
        except DiagramError as err:
            raise ConfigError(f"{path} is not a YAML config that can be read: {err}") from err
    else:
        try:
            config = read_json(text)
        except DiagramError as err:
            raise ConfigError(
                f"{path} is not a JSON config that can be read: {err}; a YAML config needs the suffix .yaml"
            ) from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config is a mapping with the keys {', '.join(CONFIG_KEYS)}")
    unknown = [k for k in config if k not in CONFIG_KEYS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; a config has the keys {', '.join(CONFIG_KEYS)}"
        )
    if not isinstance(config.get("diagram"), str):
        raise ConfigError(f"{path}: 'diagram' must name the diagram file, e.g. diagram: distillation.yaml")
    if not isinstance(config.get("env"), str):
        raise ConfigError(
            f"{path}: 'env' must name the function (or mapping) that gives the models and data "
            f"the diagram names, as MODULE:ATTR, e.g. env: my_project.setup:make_env"
        )
    if config.get("train") is not None and not isinstance(config["train"], dict):
        raise ConfigError(f"{path}: 'train' must be a mapping of ld.fit options, e.g. train: {{epochs: 10}}")
    return config


def _train_options(train: Mapping[str, Any], path: Path) -> dict[str, Any]:
    from .training import Trainer

    known = [f.name for f in dataclasses.fields(Trainer)]
    unknown = [k for k in train if k not in known]
    if unknown:
        raise ConfigError(
            f"{path}: unknown train option(s) {', '.join(map(repr, unknown))}; ld.fit takes {', '.join(known)}"
        )
    return dict(train)


# Options whose config value is a name that the command line resolves (an import, an env entry).
_NAMED = ("optimizer", "optimizers", "scheduler", "eval_data")


def _check_types(options: Mapping[str, Any], path: Path) -> None:
    """Refuse a ``train`` value whose type the :class:`Trainer` field does not take, naming the key."""
    from .io.limits import shown
    from .training import Trainer

    try:
        hints = typing.get_type_hints(Trainer)
    except Exception:  # pragma: no cover - annotations this Python cannot evaluate: ld.fit checks alone
        return
    for name, value in options.items():
        hint = hints.get(name)
        if hint is not None and not _fits(value, hint):
            raise ConfigError(f"{path}: train.{name} is {shown(value)}; it takes {_kinds(hint)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: train.{name} is {value}; it takes a finite number")


_UNIONS = (typing.Union, types.UnionType)
_PLAIN: dict[Any, tuple[str, Any]] = {
    type(None): ("null", lambda v: v is None),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _fits(value: Any, hint: Any) -> bool:
    """Whether the plain config ``value`` is of the type ``hint`` (a name stands for a class or callable)."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        return any(_fits(value, a) for a in args)
    if hint in _PLAIN:
        return bool(_PLAIN[hint][1](value))
    base = origin or hint
    if base in (type, abc.Callable):
        return isinstance(value, str)  # MODULE:ATTR or a torch.optim name, resolved later
    if base in (abc.Mapping, dict):
        inner = args[1] if len(args) == 2 else Any
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, inner) for k, v in value.items())
    if base in (abc.Sequence, list, tuple):
        return isinstance(value, list)
    return False  # os.PathLike and the like: no plain value is one (a path is a string)


def _kinds(hint: Any) -> str:
    """``hint`` in words: "an integer or null"."""
    if typing.get_origin(hint) in _UNIONS:
        return " or ".join(dict.fromkeys(w for w in map(_kinds, typing.get_args(hint)) if w))
    if hint in _PLAIN:
        return str(_PLAIN[hint][0])
    base = typing.get_origin(hint) or hint
    if base in (type, abc.Callable):
        return "a name (MODULE:ATTR, or a torch.optim class)"
    if base in (abc.Mapping, dict):
        args = typing.get_args(hint)
        inner = _kinds(args[1]) if len(args) == 2 and args[1] is not Any else ""
        return f"a mapping (of names to {inner})" if inner else "a mapping"
    return "a list" if base in (abc.Sequence, list) else ""


def _check_values(options: Mapping[str, Any], path: Path) -> None:
    """Try the values that torch will take, once, so that a bad one is an error naming its key, not a traceback."""
    import torch

    from .io.limits import clipped, shown

    device = options.get("device", "auto")
    if device != "auto":
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ConfigError(
                f"{path}: train.device {shown(device)} is not a device: {clipped(str(err), 200)}"
            ) from err
        if parsed.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"{path}: train.device is {device!r}, but this machine has no CUDA device")
    optimizers = [("optimizer", options.get("optimizer", torch.optim.Adam))]
    optimizers += [(f"optimizers.{k}", v) for k, v in (options.get("optimizers") or {}).items()]
    rates = [("lr", options.get("lr", 1e-3))] + [(f"lrs.{k}", v) for k, v in (options.get("lrs") or {}).items()]
    kwargs = dict(options.get("optimizer_kwargs") or {})
    probe = None
    for where, spec in optimizers:
        if not (isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer)):
            continue  # a function of the parameter groups: the user's own code
        for rate_key, rate in rates:
            try:
                built = typing.cast(Any, spec)([torch.nn.Parameter(torch.zeros(1))], lr=rate, **kwargs)
            except Exception as err:  # noqa: BLE001 - whatever torch says of the values, said of the config
                raise ConfigError(
                    f"{path}: train.{where} ({spec.__name__}) refuses train.{rate_key} = {shown(rate)} with "
                    f"train.optimizer_kwargs = {shown(kwargs)}: {type(err).__name__}: {clipped(str(err), 200)}"
                ) from err
            probe = probe or built
    scheduler = options.get("scheduler")
    if scheduler is not None and probe is not None:
        try:
            scheduler(probe)
        except Exception as err:  # noqa: BLE001
            raise ConfigError(
                f"{path}: train.scheduler fails on an optimiser: {type(err).__name__}: {clipped(str(err), 200)}; it is called "
                f"with each optimiser alone, e.g. a function making torch.optim.lr_scheduler.StepLR(opt, 10)"
            ) from err


def _resolve_options(options: dict[str, Any], env: Mapping[str, Any] | None, base: Path, path: Path) -> dict[str, Any]:
    """Config values that stand for objects: optimiser names, env names, paths."""
    if isinstance(options.get("optimizer"), str):
        options["optimizer"] = _optimizer(options["optimizer"], path)
    if isinstance(options.get("optimizers"), dict):
        options["optimizers"] = {
            k: _optimizer(v, path) if isinstance(v, str) else v for k, v in options["optimizers"].items()
        }
    if isinstance(options.get("scheduler"), str):
        options["scheduler"] = _import(options["scheduler"], "train.scheduler", base)
    if isinstance(options.get("eval_data"), dict):
        options["eval_data"] = {
            vertex: _from_env(value, env, f"train.eval_data.{vertex}", path)
            for vertex, value in options["eval_data"].items()
        }
    for option in PATH_OPTIONS:
        value = options.get(option)
        if isinstance(value, str):
            options[option] = base / value
    return options


def _optimizer(name: str, path: Path) -> Any:
    import torch

    if ":" in name:
        return _import(name, "train.optimizer", path.parent)
    short = name.removeprefix("torch.optim.")
    cls = getattr(torch.optim, short, None)
    if not isinstance(cls, type) or not issubclass(cls, torch.optim.Optimizer):
        raise ConfigError(
            f"{path}: train.optimizer {name!r} is not a torch.optim optimiser; use e.g. Adam, "
            f"AdamW, SGD, or MODULE:ATTR for your own"
        )
    return cls


def _from_env(value: Any, env: Mapping[str, Any] | None, where: str, path: Path) -> Any:
    if not isinstance(value, str):
        return value
    if env is None or value not in env:
        known = ", ".join(sorted(env)) if env else "none: the config has no env"
        raise ConfigError(f"{path}: {where} names {value!r}, which the env does not have (it has {known})")
    return env[value]


# -----------------------------------------------------------------------------
# Environments: the user's own module, named by the user


def load_env(spec: str, *, base: str | os.PathLike | None = None) -> Mapping[str, Any]:
    """The mapping that ``spec`` (``"module:attr"``) names: the attribute, or what calling it returns.

    ``base`` (a folder, e.g. the config's) and the working directory are on
    ``sys.path`` while the module is imported.
    """
    obj = _import(spec, "env", base)
    if callable(obj) and not isinstance(obj, Mapping):
        obj = obj()
    if not isinstance(obj, Mapping):
        raise ConfigError(f"env {spec!r} gave a {type(obj).__name__}, not a mapping of names to models and data")
    return obj


def _import(spec: str, what: str, base: str | os.PathLike | None) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} is not MODULE:ATTR, e.g. my_project.setup:make_env")
    with _on_path(base):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
                raise ConfigError(
                    f"{what} {spec!r}: no module named {err.name!r} (looked in the working "
                    f"directory{', ' + str(base) if base else ''} and sys.path)"
                ) from err
            raise
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as err:
            raise ConfigError(f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}") from err
    return obj


@contextlib.contextmanager
def _on_path(base: str | os.PathLike | None) -> Iterator[None]:
    """Put ``base`` and the working directory at the front of ``sys.path`` for a while."""
    saved = list(sys.path)
    for folder in (os.getcwd(), base):
        if folder is not None:
            resolved = str(Path(folder).resolve())
            if resolved not in sys.path:
                sys.path.insert(0, resolved)
    try:
        yield
    finally:
        sys.path[:] = saved
