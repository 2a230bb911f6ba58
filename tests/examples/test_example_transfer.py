"""The transfer-set distillation example: its diagram, its split of the data, and a short run."""

import shutil

import pytest
import torch
from torch.utils.data import TensorDataset

import learning_diagrams as ld
from learning_diagrams.examples import datasets
from learning_diagrams.examples import transfer as ex

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

STEPS = 40  # 40 batches of 64 (2,560 rows) from 1,293 unlabelled images: the cache shows in the count


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short run: one seed, a few steps a stage, into a fresh folder."""
    folder = tmp_path_factory.mktemp("transfer")
    argv = ["--seeds", "0", "--steps", str(STEPS), "--batch-size", "64", "--quiet", "--log-dir", str(folder)]
    return ex.main(argv), folder


def test_the_diagram_has_two_data_vertices_and_one_pair_from_each():
    teacher, student = ex.mlp(ex.TEACHER_WIDTH), ex.mlp(ex.STUDENT_WIDTH)
    d = ex.transfer_distillation(teacher, student, [], [], temperature=3.0, soft_weight=0.5)
    assert [v for v, s in d.spaces.items() if s.is_indexing] == ["N", "U"]
    pairs = [(p.name, p.source, p.target, p.weight) for p in d.parallel_pairs()]
    assert pairs == [
        ("x·student·hard ≤ y", "N", "Y", 1.0),
        ("u·student·soft ≤ u·teacher·soft", "U", "G", 0.5),
    ]
    assert d.spaces["G"].loss == ld.losses.KLDivergence(temperature=3.0)
    assert not d.maps["teacher"].trainable and d.maps["student"].trainable
    assert d.maps["teacher"].fn is teacher and d.maps["student"].fn is student


def test_the_models_are_the_issues_mlps():
    shapes = [tuple(p.shape) for p in ex.mlp(ex.TEACHER_WIDTH).parameters()]
    assert shapes == [(256, 64), (256,), (10, 256), (10,)]
    assert [tuple(p.shape) for p in ex.mlp(ex.STUDENT_WIDTH).parameters()][0] == (32, 64)


def test_the_split_is_disjoint_stratified_and_seeded():
    train, _ = datasets.digits()
    y = train.tensors[1]
    labelled, unlabelled = ex.split(y, 0.1, seed=0)
    assert len(labelled) == round(0.1 * len(y)) and len(labelled) + len(unlabelled) == len(y)
    assert sorted(torch.cat([labelled, unlabelled]).tolist()) == list(range(len(y)))  # a partition
    share = torch.bincount(y[labelled], minlength=10) / torch.bincount(y, minlength=10)
    assert share.min() > 0.07 and share.max() < 0.13  # each class in its share (about 14 of about 144)
    again, _ = ex.split(y, 0.1, seed=0)
    other, _ = ex.split(y, 0.1, seed=1)
    assert torch.equal(again, labelled) and not torch.equal(other, labelled)


def test_the_transfer_set_keeps_images_only():
    images, labels = torch.rand(50, 1, 8, 8), torch.arange(50) % 5
    labelled, unlabelled = ex.transfer_sets(TensorDataset(images, labels), 0.2, seed=0)
    assert len(labelled.tensors) == 2 and len(unlabelled.tensors) == 1
    assert len(labelled) == 10 and len(unlabelled) == 40
    rows = {tuple(r.flatten().tolist()) for r in labelled.tensors[0]}
    assert not rows & {tuple(r.flatten().tolist()) for r in unlabelled.tensors[0]}


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.003])
def test_a_fraction_that_leaves_a_class_out_is_refused(fraction):
    with pytest.raises(ld.errors.OptionError, match="every one of the 10 classes"):
        ex.split(torch.arange(1000) % 10, fraction)


def test_main_refuses_a_bad_fraction_before_training(capsys):
    with pytest.raises(SystemExit):
        ex.main(["--labelled-fraction", "0.001", "--quiet"])
    assert "--labelled-fraction" in capsys.readouterr().err


def test_a_short_run_reports_the_three_models_and_the_gain(run):
    results, _ = run
    for name in ("teacher", "student alone", "distilled student"):
        assert len(results[name]) == 1 and 0.0 <= results[name][0] <= 100.0
    assert results["gain"] == [results["distilled student"][0] - results["student alone"][0]]
    assert results["teacher"][0] > 50.0  # far above chance (10 %) after 40 steps on every label


def test_the_frozen_teacher_runs_once_per_unlabelled_image(run):
    results, _ = run
    # 40 steps of 64 rows would be 2,560 teacher rows without the cache
    assert results["frozen images"] == [len(datasets.digits()[0]) - 144]


def test_a_short_run_writes_logs_checkpoints_and_the_drawing(run):
    results, folder = run
    seed = folder / "seed0"
    assert (seed / "log.csv").is_file() and (seed / "losses.png").is_file()
    assert (seed / "checkpoints" / "latest").read_text().strip() == f"step-{3 * STEPS:09d}"
    if shutil.which("dot") is None:
        assert results["drawing"] == folder / "transfer.dot"
    else:
        assert results["drawing"] == folder / "transfer.svg"
    assert results["drawing"].read_text().lstrip().startswith(("<?xml", "<svg", "digraph"))


def test_resume_reads_the_finished_run_back_without_training(run, capsys):
    results, folder = run
    again = ex.main(["--seeds", "0", "--steps", str(STEPS), "--quiet", "--log-dir", str(folder), "--resume"])
    out = capsys.readouterr().out
    assert again["distilled student"] == results["distilled student"]
    assert again["frozen images"] == [0] and "resumed from" in out
    assert f"python -m learning_diagrams.examples.transfer --seeds 0 --steps {STEPS}" in out
    assert f"python -m learning_diagrams plot {folder}/seed*" in out  # the command line's re-plot


def test_the_printed_commands_use_the_python_that_ran_them(monkeypatch, tmp_path):
    monkeypatch.setattr(ex.sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    monkeypatch.chdir(tmp_path)
    assert ex.interpreter() == ".venv/bin/python"  # as make demo runs it: the command works where it is printed
    monkeypatch.chdir(tmp_path.parent)
    assert ex.interpreter() == f"{tmp_path.name}/.venv/bin/python"
    monkeypatch.setattr(ex.sys, "executable", "/usr/bin/python3")
    assert ex.interpreter() == "python"
