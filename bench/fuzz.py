"""Fuzzing the readers: every bad input must get a library error, in bounded time.

Two runs, each over inputs drawn from a seeded random generator:

* ``ld.parse`` on texts generated from the grammar (deep nesting, long
  literals, both spellings of every symbol, comments) and on valid texts
  mutated character by character and span by span;
* ``ld.load`` on a diagram saved with its weights, in both layouts, after a
  mutation of the diagram file (its bytes, or its parsed value: a value
  replaced by deep nesting, a huge number, a long string, a YAML anchor, alias
  or tag), or of the weights file (its bytes, or its header: dtypes, shapes,
  offsets, metadata aliases). A weights mutation is loaded either through a
  diagram file whose SHA-256 entry is made to match it (so that the
  safetensors reader itself is reached), or through a legacy diagram file with
  no ``weights`` entry, or as is (the checksum must refuse it).

An input *escapes* when it raises anything but a ``DiagramError`` (or, for
files, an ``OSError``); each input runs under a 10 s alarm, which counts as an
escape. The report gives the inputs tried, the escapes by exception type
(with an example of each, written to ``--out``), and the worst time per KB of
input (and the worst time). Goals: no escape, no input slower than 1 s per KB.

``--bombs`` measures, each in a fresh process: a YAML "billion laughs" alias
bomb of about 380 bytes, and a YAML mapping of 32,000 keys with one duplicate
(the duplicate-key check), with the wall time and the process's peak memory.
Run it against an older checkout with ``PYTHONPATH=<old>/src`` to compare.

Run: ``.venv/bin/python bench/fuzz.py [--parser 50000] [--loader 5000] [--seed 0] [--bombs]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import functools
import hashlib
import json
import os
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import DiagramError

# -- texts ----------------------------------------------------------------------------------------

SEED_TEXTS = [
    "X ⇒ [batches]\nY ⇒ {Tensor, mse}\nf: X → Y ⇒ x → double(x)\ng: X → Y\nf ≤ g\n",
    "N => [ds]\nX => (Any, Tensor)\nY => {Tensor, cross_entropy}\nx: N -> X => b -> b[0]\n"
    "y: N -> Y => b -> b[1]\nm: X -> Y => model\nx.m <= y @ 0.5\n",
    "A ⇒ [ds]  # data\nB ⇒ l1\nf: A → B ⇒ (a, (b, c)) → pair(c[1:], b, a)\ng: A → B ⇒ heads[2]\n"
    "h: B → B\nid(B) ≤ h\nf · h ≤ g @ 2\n",
    "S => [ds]\nT => {mse,}\nk: S -> T => s -> pair(s, 'text', \"more\", -3, 1.5e-3, heads[-1])\nk <= k\n",
]

NAMES = ["X", "Y", "N", "A", "B", "f", "g", "h", "x", "ds", "batches", "double", "pair", "heads", "model"]
NAMES += ["Tensor", "Any", "mse", "l1", "kl_div", "cross_entropy", "id", "λ", "ñame", "_", "a1"]
SYMBOLS = ["⇒", "=>", "→", "->", "·", ".", "≤", "<=", ":", ",", "@", "(", ")", "[", "]", "{", "}", "-"]
SYMBOLS += ["#", "'", '"', "\n", "\r\n", " ", "\t", "\\", "=", "<", ">", "\x00", "\ufeff", "\u2028", "\ud800"]


def _weights_entry(obj: dict) -> dict:
    """The weights a diagram file records, ``{"file", "sha256"}``: a YAML config's ``weights``
    key, or the ACSet JSON's one ``Diagram`` row."""
    if "Diagram" in obj:
        row = obj["Diagram"][0]
        return {"file": row["weights_file"], "sha256": row["weights_sha256"]}
    return dict(obj["weights"])


def _set_weights_entry(obj: dict, entry: dict) -> None:
    if "Diagram" in obj:
        row = obj["Diagram"][0]
        if entry:
            row["weights_file"], row["weights_sha256"] = entry["file"], entry["sha256"]
        else:
            for column, table in (("weights_file", "Name"), ("weights_sha256", "Digest")):
                rows = obj.setdefault(table, [])  # an unset attribute is a variable: a new row of its type's table
                rows.append({"_id": len(rows) + 1})
                row[column] = {"_var": len(rows)}
    elif entry:
        obj["weights"] = entry
    else:
        obj.pop("weights", None)


def harmless(*args: Any) -> Any:
    return args[0] if len(args) == 1 else args


class Tensor:
    """Stands in for torch.Tensor in the fuzzed env: ``Tensor(99999, 99999)`` would allocate 40 GB."""


PARSE_ENV: dict[str, Any] = {
    "batches": [torch.zeros(2)],
    "ds": [torch.zeros(2)],
    "double": harmless,
    "pair": harmless,
    "heads": [harmless, harmless, harmless],
    "model": nn.Identity(),
    "g": nn.Identity(),
    "h": harmless,
    "Tensor": Tensor,
}


def number(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "9" * rng.choice([50, 99, 100, 101, 500, 4301, 20000])
    if kind == 1:
        return f"{rng.randrange(10**6)}.{rng.randrange(10**6)}e{rng.choice('+-')}{rng.randrange(400)}"
    if kind == 2:
        return "1" + "0" * rng.randrange(400) + "." + "5" * rng.randrange(400)
    return str(rng.randrange(-5, 1000))


def string(rng: random.Random) -> str:
    quote = rng.choice("'\"")
    length = rng.choice([0, 1, 5, 999, 1000, 1001, 30000])
    return quote + "s" * length + quote


def expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice([rng.choice(NAMES), number(rng), string(rng)])
    kind = rng.randrange(5)
    if kind == 0:
        return f"{expr(rng, depth - 1)}({', '.join(expr(rng, depth - 1) for _ in range(rng.randrange(3)))})"
    if kind == 1:
        key = rng.choice([str(rng.randrange(-3, 3)), ":", "1:", ":-1", "'k'", number(rng)])
        return f"{expr(rng, depth - 1)}[{key}]"
    if kind == 2:
        return f"({', '.join(expr(rng, depth - 1) for _ in range(rng.randrange(4)))},)"
    return expr(rng, depth - 1)


def deep(rng: random.Random) -> str:
    """One construct nested far past the limit, iteratively (the generator must not recurse either)."""
    n = rng.choice([99, 100, 101, 102, 150, 500, 1000]) if rng.random() < 0.97 else rng.choice([5000, 20000])
    kind = rng.randrange(4)
    if kind == 0:
        return "g(" * n + "x" + ")" * n
    if kind == 1:
        return "x" + "[0]" * n
    if kind == 2:
        return "(" * n + "x" + ",)" * n
    return "h" + "()" * n


def statement(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    arrow, darrow = rng.choice(["→", "->"]), rng.choice(["⇒", "=>"])
    depth = rng.choice([1, 2, 3, 6])
    kind = rng.randrange(7)
    if kind == 0:
        return f"{name} {darrow} [{expr(rng, depth)}]"
    if kind == 1:
        return f"{name} {darrow} {{{', '.join(expr(rng, depth) for _ in range(rng.randrange(1, 4)))}}}"
    if kind == 2:
        rhs = f" {darrow} {expr(rng, depth)} {arrow} {expr(rng, depth)}" if rng.random() < 0.7 else ""
        return f"{name}: {rng.choice(NAMES)} {arrow} {rng.choice(NAMES)}{rhs}"
    if kind == 3:
        weight = f" @ {number(rng)}" if rng.random() < 0.5 else ""
        path = rng.choice([".", "·"]).join(rng.choice(NAMES) for _ in range(rng.randrange(1, 4)))
        return f"{path} {rng.choice(['≤', '<='])} id({rng.choice(NAMES)}){weight}"
    if kind == 4:
        return f"f: A {arrow} B {darrow} x {arrow} {deep(rng)}"
    if kind == 5:
        return f"{name} {darrow} [{deep(rng)}]"
    return "# " + rng.choice(SYMBOLS) * rng.randrange(10)


def generated_text(rng: random.Random) -> str:
    return "\n".join(statement(rng) for _ in range(rng.randrange(1, 8)))


def mutated_text(rng: random.Random, text: str) -> str:
    for _ in range(rng.randrange(1, 6)):
        i = rng.randrange(len(text) + 1)
        j = min(len(text), i + rng.randrange(12))
        op = rng.randrange(6)
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + rng.choice(SYMBOLS + NAMES) + text[i:]
        elif op == 2:
            text = text[:i] + text[i:j] * rng.choice([2, 10, 200]) + text[j:]
        elif op == 3:
            text = text[:i] + chr(rng.randrange(0x110000)) + text[j:]
        elif op == 4:
            text = text[:i] + deep(rng) + text[i:]
        else:
            text = text[:i] + rng.choice([number(rng), string(rng)]) + text[j:]
    return text


# -- runs -----------------------------------------------------------------------------------------


class Alarm(Exception):
    """An input that ran past the per-input limit."""


@dataclass
class Report:
    what: str
    tried: int = 0
    escapes: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, bytes] = field(default_factory=dict)
    worst_per_kb: tuple[float, int, float] = (0.0, 0, 0.0)  # s/KB, bytes, s
    worst: tuple[float, int] = (0.0, 0)  # s, bytes
    total: float = 0.0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)

    def record(self, size: int, seconds: float, outcome: str, escape: BaseException | None, example: bytes) -> None:
        self.tried += 1
        self.outcomes[outcome] += 1
        self.total += seconds
        per_kb = seconds / max(size / 1024, 1e-9)
        if per_kb > self.worst_per_kb[0]:
            self.worst_per_kb = (per_kb, size, seconds)
        if seconds > self.worst[0]:
            self.worst = (seconds, size)
        if escape is not None:
            kind = f"{type(escape).__name__}: {str(escape)[:120]}"
            self.escapes[type(escape).__name__] += 1
            self.examples.setdefault(kind, example)

    def __str__(self) -> str:
        per_kb, size, seconds = self.worst_per_kb
        lines = [
            f"{self.what}: {self.tried} inputs, {sum(self.escapes.values())} escapes, {self.total:.1f} s in all",
            f"  worst time per KB: {per_kb:.4f} s/KB ({seconds * 1000:.1f} ms on {size} bytes); "
            f"worst time: {self.worst[0] * 1000:.1f} ms on {self.worst[1]} bytes",
        ]
        lines.append("  outcomes: " + ", ".join(f"{k} {n}" for k, n in self.outcomes.most_common()))
        lines += [f"  escape: {kind}" for kind in self.examples]
        return "\n".join(lines)


def timed(call: Any, allowed: tuple[type[BaseException], ...]) -> tuple[float, str, BaseException | None]:
    def ring(signum: int, frame: Any) -> None:
        raise Alarm("over 10 s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    start = time.perf_counter()
    escape: BaseException | None = None
    outcome = "accepted"
    try:
        call()
    except allowed as err:
        outcome = type(err).__name__
    except Exception as err:  # noqa: BLE001 - the point: anything else is an escape
        escape, outcome = err, f"ESCAPE {type(err).__name__}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return time.perf_counter() - start, outcome, escape


def fuzz_parser(n: int, rng: random.Random) -> Report:
    report = Report("ld.parse")
    for i in range(n):
        text = generated_text(rng) if i % 2 else mutated_text(rng, rng.choice(SEED_TEXTS))
        data = text.encode("utf-8", "surrogatepass")
        seconds, outcome, escape = timed(functools.partial(ld.parse, text, PARSE_ENV), (DiagramError,))
        report.record(len(data), seconds, outcome, escape, data)
    return report


# -- files ----------------------------------------------------------------------------------------


def diagram_and_env() -> tuple[ld.Diagram, dict[str, Any]]:
    torch.manual_seed(0)
    teacher, student, shared = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(3, 3)
    tied = nn.Sequential(shared, nn.ReLU(), shared)
    data = [(torch.randn(8, 4), torch.randint(3, (8,)))]
    d = (
        ld.Diagram(max_length=4)
        .space("N", data=data)
        .space("X", type=ld.TensorType(None, 4, dtype=torch.float32))
        .space("L", type=(torch.Tensor, int))
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", harmless)
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", tied, training=False)
        .map("soft", "L", "G", None)
        .relate("x·student·hard", "x·teacher·hard", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )
    env = {"train_ds": data, "first": harmless, "teacher": teacher, "student": student, "hard": tied}
    return d, env


def fresh(env: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) if isinstance(v, nn.Module) else v for k, v in env.items()}


def json_value(rng: random.Random) -> Any:
    kind = rng.randrange(12)
    if kind == 0:
        value: Any = "x"
        for _ in range(rng.choice([10, 63, 64, 65, 66, 150])):  # deeper: mutated_bytes inserts brackets
            value = [value] if rng.random() < 0.5 else {"k": value}
        return value
    if kind == 1:
        return f"<<digits:{rng.choice([10, 4300, 4301, 10000])}>>"  # written as a bare number by raw_numbers
    if kind == 2:
        return "n" * rng.choice([0, 1, 100, 100_000])
    if kind == 3:
        return rng.choice([None, True, False, 0, -1, 1.5, 1e308, -0.0])
    if kind == 4:
        return [rng.randrange(-2, 10) for _ in range(rng.randrange(5))]
    if kind == 5:
        return {"tensor": {"shape": [rng.choice([None, -1, 3, 10**30])], "dtype": rng.choice(["float32", "F32", 3])}}
    if kind == 6:
        return {
            "file": rng.choice(["../x.safetensors", "/etc/passwd", "kd.safetensors", "a" * 300]),
            "sha256": "0" * 64,
        }
    if kind == 7:
        return rng.choice(["kl_div(T=0)", "kl_div(T=" + "9" * 5000 + ")", "__import__('os')", "os:system", "mse"])
    if kind == 8:
        return {f"k{i}": i for i in range(rng.choice([1, 5, 1000]))}
    return rng.choice(NAMES)


def raw_numbers(text: str) -> str:
    """The text with each ``"<<digits:N>>"`` marker replaced by a number of N digits (json cannot write them)."""
    return re.sub(r"[\"']?<<digits:(\d+)>>[\"']?", lambda m: "9" * int(m.group(1)), text)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found, stack = [], [(value, prefix)]
    while stack:
        node, at = stack.pop()
        found.append(at)
        if isinstance(node, dict):
            stack.extend((v, (*at, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*at, i)) for i, v in enumerate(node))
    return found


def mutated_value(rng: random.Random, obj: Any) -> Any:
    obj = copy.deepcopy(obj)
    for _ in range(rng.randrange(1, 4)):
        at = rng.choice(paths_of(obj))
        if not at:
            continue
        parent = obj
        for key in at[:-1]:
            parent = parent[key]
        op = rng.randrange(4)
        if op == 0 and isinstance(parent, dict):
            del parent[at[-1]]
        elif op == 1 and isinstance(parent, dict):
            parent[rng.choice(["extra", "weights", "format", "_id", "type", "trainable"])] = json_value(rng)
        elif op == 2 and isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), json_value(rng))
        else:
            parent[at[-1]] = json_value(rng)
    return obj


YAML_SNIPPETS = [
    "&a [x, x]",
    "*a",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!timestamp 2001-13-45",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "{<<: {x: 1}}",
    "!!int 0x" + "f" * 5000,
    "!!float nan",
    "2001-01-01",
    "? [a, b]\n  : c",
    "{[a]: b}",
    "---\n---",
    "%YAML 1.1\n---",
    "'" + "q" * 10000,
]


def mutated_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        i = rng.randrange(len(out) + 1)
        op = rng.randrange(6)
        if op == 0 and out:
            out[min(i, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            del out[i : i + rng.randrange(64)]
        elif op == 2:
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif op == 3:
            del out[i:]
        elif op == 4:
            out[i:i] = out[i : i + rng.randrange(1, 200)] * rng.choice([2, 50])
        else:
            n = rng.choice([63, 64, 65, 500, 5000])
            open_, close = rng.choice([(b"[", b"]"), (b'{"k":', b"}"), (b"- ", b""), (b"[", b"")])
            out[i:i] = open_ * n + b"1" + close * n
    return bytes(out)


def mutated_yaml(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randrange(1, 4)):
        k = rng.randrange(len(lines))
        line = lines[k]
        if ":" in line and rng.random() < 0.6:
            head = line.split(":", 1)[0]
            lines[k] = f"{head}: {rng.choice(YAML_SNIPPETS)}"
        else:
            lines.insert(k, rng.choice(YAML_SNIPPETS))
    return "\n".join(lines)


def header_of(data: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def with_header(header: dict[str, Any], body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def mutated_weights(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.4:
        return mutated_bytes(rng, data)
    header, body = header_of(data)
    keys = [k for k in header if k != "__metadata__"]
    key = rng.choice(keys)
    op = rng.randrange(6)
    if op == 0:
        header[key]["dtype"] = rng.choice(["I32", "F16", "F64", "BOOL", "U8", "XX", 3])
    elif op == 1:
        header[key]["shape"] = rng.choice([[3, 4], [4, 3], [12], [], [-1], [10**12], "3"])
    elif op == 2:
        a, b = header[key]["data_offsets"]
        header[key]["data_offsets"] = rng.choice([[a, b + 4], [b, a], [0, len(body) + 8], [a, a]])
    elif op == 3:
        header.setdefault("__metadata__", {})[rng.choice(keys)] = rng.choice(keys)  # an alias over a tensor
    elif op == 4:
        header.setdefault("__metadata__", {})["nothing.here"] = rng.choice([*keys, "missing"])
    else:
        header[rng.choice(keys)] = header[key]  # two keys at the same bytes
    return with_header(header, body)


def fuzz_loader(n: int, rng: random.Random) -> Report:
    report = Report("ld.load")
    d, env = diagram_and_env()
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        seeds = {}
        for suffix in (".json", ".yaml"):
            ld.save(d, folder / f"seed{suffix}", names=env)
            text = (folder / f"seed{suffix}").read_text(encoding="utf-8")
            seeds[suffix] = (text, ld.io.weights_path(folder / f"seed{suffix}").read_bytes())
        for i in range(n):
            suffix = rng.choice([".json", ".yaml"])
            text, weights = seeds[suffix]
            obj = json.loads(text) if suffix == ".json" else ld.io.files.read_yaml(text)
            choice = rng.randrange(5)
            entry = _weights_entry(obj)
            weights_name = entry["file"]
            if choice == 0:
                new_text, new_weights = mutated_bytes(rng, text.encode()).decode("utf-8", "replace"), weights
            elif choice == 1:
                mutated = mutated_value(rng, obj)
                new_text = json.dumps(mutated) if suffix == ".json" else ld.io.config.dump_yaml(mutated)
                new_text, new_weights = raw_numbers(new_text), weights
            elif choice == 2 and suffix == ".yaml":
                new_text, new_weights = mutated_yaml(rng, text), weights
            else:  # the weights: behind a matching checksum, a legacy file, or as they are
                new_weights = mutated_weights(rng, weights)
                how = rng.randrange(3)
                if how == 0:
                    entry["sha256"] = hashlib.sha256(new_weights).hexdigest()
                elif how == 1:
                    entry.clear()  # no weights recorded: the file beside it is read as a legacy one
                    weights_name = f"case{i}.safetensors"
                _set_weights_entry(obj, entry)
                new_text = json.dumps(obj) if suffix == ".json" else ld.io.config.dump_yaml(obj)
            case = folder / f"case{i}"
            case.mkdir()
            path = case / f"case{i}{suffix}"
            path.write_text(new_text, encoding="utf-8", errors="surrogatepass")
            (case / weights_name).write_bytes(new_weights)
            modules = fresh(env)
            seconds, outcome, escape = timed(functools.partial(ld.load, path, modules), (DiagramError, OSError))
            size = len(new_text.encode("utf-8", "surrogatepass")) + len(new_weights)
            example = f"{suffix}\n{new_text}".encode("utf-8", "surrogatepass")
            report.record(size, seconds, outcome, escape, example)
            for p in case.iterdir():
                p.unlink()
            case.rmdir()
    return report


# -- bombs ----------------------------------------------------------------------------------------


def alias_bomb(levels: int = 8) -> str:
    """A YAML "billion laughs": ``levels`` anchors, each a list of nine aliases of the one before."""
    anchors = ["&a0 [x,x,x,x,x,x,x,x,x]"] + [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return f"spaces: {{X: {{}}}}\nmaps:\n  f: {{src: X, tgt: X, trainable: [{', '.join(anchors)}]}}\n"


def duplicate_keys(n: int = 32_000) -> str:
    return "spaces:\n" + "".join(f"  v{i}: {{}}\n" for i in range(n)) + "  v0: {}\n"


def measure(which: str) -> dict[str, Any]:
    """Load one bomb in this process; the time and the peak memory it added."""
    import learning_diagrams.io.files  # noqa: F401 - the imports are not part of the measure

    text = alias_bomb() if which == "alias" else duplicate_keys()
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "bomb.yaml"
        path.write_text(text, encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            ld.load(path, {})
            outcome = "loaded"
        except Exception as err:  # noqa: BLE001
            outcome = f"{type(err).__name__}, a message of {len(str(err))} characters: {str(err)[:150]}"
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"bytes": len(text.encode()), "seconds": seconds, "peak_mb": peak / 1024, "outcome": outcome}


def bombs() -> None:
    for which, label in (("alias", "alias bomb (8 levels of 9 aliases)"), ("keys", "32,000 keys and a duplicate")):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", which], capture_output=True, text=True, timeout=1200
        )
        if done.returncode:
            print(f"{label}: the measuring process failed: {done.stderr[-500:]}")
            continue
        m = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{label}: {m['bytes']} bytes, {m['seconds']:.2f} s, peak memory +{m['peak_mb']:.0f} MB: {m['outcome']}")
    start = time.perf_counter()
    import yaml

    yaml.safe_load(duplicate_keys())
    print(f"  (yaml.safe_load alone of the 32,000 keys: {time.perf_counter() - start:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parser", type=int, default=50_000, help="ld.parse inputs (default 50000)")
    parser.add_argument("--loader", type=int, default=5_000, help="ld.load inputs (default 5000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bombs", action="store_true", help="also measure the alias bomb and duplicate keys")
    parser.add_argument("--out", default="fuzz-escapes", help="folder for an example of each escape")
    parser.add_argument("--measure", choices=["alias", "keys"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    print(f"learning_diagrams from {Path(ld.__file__).parent}")
    reports = []
    if args.parser:
        reports.append(fuzz_parser(args.parser, random.Random(args.seed)))
        print(reports[-1], flush=True)
    if args.loader:
        reports.append(fuzz_loader(args.loader, random.Random(args.seed + 1)))
        print(reports[-1], flush=True)
    for report in reports:
        for k, (kind, example) in enumerate(report.examples.items()):
            os.makedirs(args.out, exist_ok=True)
            name = Path(args.out) / f"{report.what.replace('.', '_')}-{k}.txt"
            name.write_bytes(kind.encode() + b"\n" + example)
    if args.bombs:
        bombs()
    if any(r.escapes for r in reports):
        with contextlib.suppress(Exception):
            print(f"examples of the escapes are in {args.out}/")
        sys.exit(1)


if __name__ == "__main__":
    main()
