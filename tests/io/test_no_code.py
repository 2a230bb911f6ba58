"""``ld.load`` imports nothing and runs nothing from a file: checked with an audit hook (PEP 578)
in a fresh process, which records every import, exec, compile, and process spawned while loading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import learning_diagrams as ld

#: What loading a file must never do; a fresh interpreter records these while loading.
AUDITED = """\
import json, sys
from pathlib import Path

import torch
from torch import nn

import learning_diagrams as ld
import learning_diagrams.io
import learning_diagrams.io.files  # learning_diagrams.io loads it on first use: loaded before the hook
from learning_diagrams.core.errors import DiagramError

folder = Path(sys.argv[1])
env = {"ds": [1], "f": nn.Linear(2, 2), "g": nn.Sequential(nn.Linear(2, 2))}
events = []
WATCHED = ("import", "exec", "compile", "os.system", "pickle.find_class", "ctypes.dlopen", "marshal.loads")


def hook(event, args):
    if event in WATCHED or event.startswith(("subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "os.fork")):
        events.append([event, repr(args)[:200]])


sys.addaudithook(hook)
outcomes = {}
for path in sorted(folder.iterdir()):
    if path.suffix not in (".json", ".yaml"):
        continue
    try:
        ld.load(path, env)
        outcomes[path.name] = "loaded"
    except DiagramError as err:
        outcomes[path.name] = type(err).__name__
if len(sys.argv) > 2:  # the check of the check: an import after loading is seen
    import colorsys  # noqa: F401
print(json.dumps({"events": events, "outcomes": outcomes}))
"""

HOSTILE_YAML = [
    "spaces:\n  N: {data: !!python/object/apply:os.system ['echo ran']}\n",
    "spaces:\n  N: {data: !!python/name:os.system}\n",
    "spaces:\n  N: {data: !!python/module:colorsys}\n",
    "spaces: {N: {data: \"__import__('colorsys')\", loss: 'kl_div(T=__import__(\"os\").getpid())'}}\n",
    "spaces: {N: {type: colorsys.rgb_to_hls}}\n",
    "spaces: {N: {data: ds}}\nmaps: {f: {src: N, tgt: N, fn: 'colorsys:rgb_to_hls'}}\n",
]


def audited_load(folder, *extra):
    done = subprocess.run(
        [sys.executable, "-c", AUDITED, str(folder), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audited")
    torch.manual_seed(0)
    f, g = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2))
    d = (
        ld.Diagram()
        .space("A", data=[1], type=ld.TensorType(None, 2, dtype=torch.float32))
        .space("B", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("f", "A", "B", f)
        .map("g", "A", "B", g)
        .relate("f", "g", weight=0.5)
    )
    for suffix in (".json", ".yaml"):
        ld.save(d, folder / f"good{suffix}", names={"ds": d.spaces["A"].data, "f": f, "g": g})
    for k, text in enumerate(HOSTILE_YAML):
        (folder / f"hostile{k}.yaml").write_text(text, encoding="utf-8")
    return folder


def test_loading_diagram_files_with_weights_imports_and_runs_nothing(files):
    report = audited_load(files)
    assert report["outcomes"]["good.json"] == report["outcomes"]["good.yaml"] == "loaded"
    assert all(report["outcomes"][f"hostile{k}.yaml"] != "loaded" for k in range(len(HOSTILE_YAML)))
    assert report["events"] == []


def test_the_audit_hook_sees_an_import(files):
    report = audited_load(files, "--import-after")
    (event, args), *rest = report["events"]
    assert event == "import" and "colorsys" in args and "exec" in {event for event, _ in rest}


def test_the_module_documents_that_loading_runs_nothing():
    doc = textwrap.dedent(ld.io.files.__doc__ or "")
    assert "Loading never imports or runs anything from a file" in doc
