"""The README's Python blocks run as written, in order, on small stand-ins for the user's objects.

A newcomer copies the front door's code first; a block that fails there costs the library its
first minute. The prelude defines only what the README leaves to the reader (data loaders and
models: `train_loader`, `teacher`, ...); everything else must come from the blocks themselves.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import transfer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def snippet(name: str) -> str:
    """The Python block between the README's ``--8<-- [start:name]`` and ``[end:name]`` markers."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"\[start:{name}\] -->\n```python\n(.*?)^```\n<!-- --8<-- \[end:{name}\]", text, re.S | re.M)
    assert found, f"README.md has no python block marked {name!r}"
    return found.group(1)


def loader(*tensors: torch.Tensor, batch_size: int = 16) -> DataLoader:
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size)


def square(i: int, backbone: nn.Module) -> ld.Diagram:
    """A classifier square for task ``i``, its backbone edge ``m`` on the shared ``X → F``."""
    data = loader(torch.randn(32, 8), torch.randint(3, (32,)))
    return (
        ld.Diagram()
        .space(f"N{i}", data=data)
        .space("X")
        .space("F")
        .space(f"Y{i}", loss=ld.losses.cross_entropy)
        .map(f"x{i}", f"N{i}", "X", lambda b: b[0])
        .map(f"y{i}", f"N{i}", f"Y{i}", lambda b: b[1])
        .map("m", "X", "F", backbone)
        .map(f"h{i}", "F", f"Y{i}", nn.Linear(6, 3))
        .relate(f"x{i}·m·h{i}", f"y{i}")
    )


def prelude() -> dict:
    torch.manual_seed(0)
    images, labels = torch.randn(64, 8), torch.randint(4, (64,))
    resnet = nn.Linear(8, 6)
    return {
        # the distillation diagram's data and models
        "train_loader": loader(images, labels),
        "test_loader": loader(images[:32], labels[:32]),
        "teacher": nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
        "student": nn.Linear(8, 4),
        # the transfer set's two data sets: a few labelled images, and images alone
        "labelled_loader": loader(images[:16], labels[:16], batch_size=8),
        "unlabelled_loader": loader(images[16:]),
        # the captioner of the text syntax (Listing 1): its encoder holds a convolution
        "train_ds": loader(torch.randn(16, 3, 8, 8), torch.randint(5, (16,)), batch_size=8),
        "v_model": nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        "lstm": nn.Linear(4, 6),
        "predict": nn.Linear(6, 5),
        "vit": nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)),
        # classifier squares sharing one backbone
        "resnet": resnet,
        "squares": [square(i, resnet) for i in range(3)],
        # Iris-sized batches for the lens learner
        "batches": [(torch.randn(8, 4), torch.randint(3, (8,))) for _ in range(4)],
    }


@pytest.mark.skipif(shutil.which("dot") is None, reason="the README draws a diagram: Graphviz's dot is needed")
def test_every_python_block_of_the_readme_runs_as_written(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)  # the blocks write runs/, checkpoints/ and distil.* where they run
    blocks = python_blocks()
    assert len(blocks) >= 5
    namespace = prelude()
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as err:  # name the block, so the README is what gets fixed
            raise AssertionError(f"README python block {i + 1} failed: {type(err).__name__}: {err}") from err
    d = namespace["d"]
    assert [p.name for p in d.parallel_pairs()] == ["x·student·hard ≤ y", "x·student·soft ≤ x·teacher·soft"]
    assert (tmp_path / "distil.json").is_file() and (tmp_path / "distil.svg").is_file()
    assert namespace["nic"].maps["CNN_x_Y"].fn is namespace["vit"]  # swapped by pattern


def test_the_transfer_regime_as_text_is_the_python_diagram(one_thread, capsys):
    namespace = prelude()
    for name in ("diagram", "transfer", "transfer-text"):  # the first defines first and second
        exec(compile(snippet(name), f"README.md block {name}", "exec"), namespace)
    assert capsys.readouterr().out.rstrip().endswith("True")
    python, text = namespace["transfer"], namespace["same"]
    teacher, student = namespace["teacher"], namespace["student"]
    expected = transfer.transfer_distillation(teacher, student, [], [], temperature=4.0).parallel_pairs()
    assert python.parallel_pairs() == text.parallel_pairs() == expected
    assert [v for v, s in text.spaces.items() if s.is_indexing] == ["N", "U"]
    assert not text.maps["teacher"].trainable and text.maps["student"].trainable
    batches = {"N": next(iter(namespace["labelled_loader"])), "U": next(iter(namespace["unlabelled_loader"]))}
    by_python, by_text = python.compile()(**batches), text.compile()(**batches)
    assert by_python.terms.keys() == by_text.terms.keys() == {p.name for p in expected}
    for name, value in by_python.terms.items():
        assert torch.equal(value, by_text.terms[name]), name
