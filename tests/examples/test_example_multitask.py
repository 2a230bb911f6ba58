import contextlib
import io
import shutil

import pytest
import torch

from learning_diagrams.examples import multitask

TASKS = ("digits", "digits_rotated")
PAIRS = [f"x_{t}·m·h_{t} ≤ y_{t}" for t in TASKS]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short run on digits only: no --tasks and an empty Fashion-MNIST folder, so it falls back."""
    tmp = tmp_path_factory.mktemp("multitask")
    (tmp / "no-fashion").mkdir()
    svg = tmp / "multitask.svg"
    argv = [
        "--fashion-root",
        str(tmp / "no-fashion"),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--quiet",
        "--log-dir",
        str(tmp / "runs"),
    ]
    if shutil.which("dot"):
        argv += ["--draw", str(svg)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = multitask.main(argv)
    return result, out.getvalue(), svg


def test_without_fashion_mnist_it_falls_back_to_two_digits_tasks_and_says_what_to_install(run):
    result, out, _ = run
    assert [t.name for t in result["tasks"]] == ["digits", "digits-rotated"]
    assert "apt-get install dataset-fashion-mnist" in out
    assert "Falling back to two digits tasks: digits,digits-rotated." in out


def test_glued_diagram_has_one_backbone_edge_and_one_head_per_task(run):
    colim = run[0]["colimit"]
    d = colim.apex
    assert [name for name in d.maps if (d.graph.src(name), d.graph.tgt(name)) == ("X", "F")] == ["m"]
    assert sorted(name for name in d.maps if d.graph.src(name) == "F") == ["h_digits", "h_digits_rotated"]
    # Each square's backbone lands on the one edge m, its head on its own edge; one module object.
    assert [leg("m") for leg in colim.legs[:2]] == ["m", "m"]
    assert [leg(f"h_{t}") for leg, t in zip(colim.legs, TASKS)] == ["h_digits", "h_digits_rotated"]
    assert all(square.maps["m"].fn is d.maps["m"].fn for square in colim.diagrams[:2])


def test_both_tasks_pairs_compile_and_give_one_term_each(run):
    d = run[0]["colimit"].apex
    assert [pair.name for pair in d.parallel_pairs()] == PAIRS
    total, terms = d.compile()()
    assert list(terms) == PAIRS and torch.isfinite(total)


def test_every_head_beats_chance_alone_and_glued_and_the_table_is_printed(run):
    result, out, _ = run
    assert result["seeds"] == [0] and result["steps_per_epoch"] == 23  # ceil(719 / 32)
    for task, values in result["accuracy"].items():
        assert len(values["alone"]) == len(values["glued"]) == 1
        assert values["alone"][0] > 25.0 and values["glued"][0] > 25.0, (task, values)  # chance: 10%
        row = next(line for line in out.splitlines() if line.startswith(f"| {task} "))
        assert f"{values['alone'][0]:.2f}" in row and f"{values['glued'][0]:.2f}" in row
    assert "| task" in out and "x_digits·m·h_digits ≤ y_digits  (at Y_digits, weight 1)" in out


def test_draw_writes_the_glued_diagram(run):
    svg = run[2]
    if not shutil.which("dot"):
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") or "<svg" in text
    assert "h_digits_rotated" in text and "x_digits" in text


def test_two_digits_tasks_train_on_disjoint_balanced_shares_and_rotated_tests():
    digits, rotated = multitask.load_tasks(["digits", "digits-rotated"])
    assert len(digits.train) + len(rotated.train) == 1437
    counts = [t.train.tensors[1].bincount(minlength=10) for t in (digits, rotated)]
    assert (counts[0] - counts[1]).abs().max() <= 1
    assert torch.equal(rotated.test.tensors[0], torch.rot90(digits.test.tensors[0], 1, dims=(2, 3)))
    alone = multitask.load_tasks(["digits"])[0]
    assert len(alone.train) == 1437


def test_asking_for_fashion_without_it_stops_with_the_install_command(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        multitask.main(["--tasks", "digits,fashion", "--fashion-root", str(tmp_path), "--quiet"])
    assert caught.value.code == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="among digits, fashion, digits-rotated"):
        multitask.load_tasks(["digits", "cifar"])
