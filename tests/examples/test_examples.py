import copy
import shutil

import pytest
import torch

import learning_diagrams as ld
from learning_diagrams.examples import datasets, distillation
from learning_diagrams.examples import distillation as ex

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_distillation_demo_runs_and_reports_three_accuracies(capsys, tmp_path):
    results = distillation.main(["--epochs", "2", "--seed", "0", "--quiet", "--log-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert set(results) == {"teacher", "student", "distilled student"}
    assert all(0.0 <= value <= 100.0 for value in results.values())
    assert "x·student·soft ≤ x·teacher·soft  (at G, weight 0.25)" in out
    assert "x·student·hard ≤ y" in out and (tmp_path / "losses.png").exists()
    assert results["teacher"] > 20.0  # far above chance (10%) after two epochs


# -- the three variants against the tutorial's hand-written losses ----------------------------------


@pytest.fixture(scope="module")
def batch():
    train, _ = datasets.digits(limit=48)
    return train.tensors


@pytest.fixture(scope="module")
def trained():
    return _models()


def models_from(trained):
    return tuple(copy.deepcopy(m) for m in trained)


def _models(seed=0):
    """A teacher trained for a few steps (so its soft targets are not uniform), a student and a regressor."""
    torch.manual_seed(seed)
    teacher = ex.DeepNN()
    torch.manual_seed(seed)
    student = ex.LightNN()
    regressor = ex.Regressor()
    train, _ = datasets.digits(limit=256)
    optimiser = torch.optim.Adam(teacher.parameters(), lr=1e-3)
    for x, y in ex.EpochBatches(train, 64, seed).epoch(0):
        torch.nn.functional.cross_entropy(teacher(x), y).backward()
        optimiser.step()
        optimiser.zero_grad()
    return teacher, student, regressor


@pytest.mark.parametrize("variant", ex.VARIANTS)
def test_each_variant_compiles_to_the_tutorials_two_terms(variant):
    teacher, student, regressor = ex.DeepNN(), ex.LightNN(), ex.Regressor()
    pairs = ex.variant_diagram(variant, teacher, student, regressor, []).parallel_pairs()
    expected = {
        "kd": {("x·student·hard ≤ y", "Y", 0.75), ("x·student·soft ≤ x·teacher·soft", "G", 0.25)},
        "cosine": {
            ("x·student_features·student_classifier·hard ≤ y", "Y", 0.75),
            ("x·student_features·flatten ≤ x·teacher_features·pool", "H", 0.25),
        },
        "regressor": {
            ("x·student_features·student_classifier·hard ≤ y", "Y", 0.75),
            ("x·student_features·regressor ≤ x·teacher_features", "M", 0.25),
        },
    }[variant]
    assert {(p.name, p.target, p.weight) for p in pairs} == expected


@pytest.mark.parametrize("losses", ex.LOSSES)
@pytest.mark.parametrize("variant", ex.VARIANTS)
def test_each_variant_equals_the_tutorials_loss_and_gradients_on_one_batch(variant, losses, batch, trained):
    teacher, student, regressor = models_from(trained)
    hand_teacher, hand_student = ex.hand_models(variant, teacher, student, regressor, side=8)
    compiled = ex.variant_diagram(variant, teacher, student, regressor, [batch], losses).compile()
    hand_teacher.eval()

    torch.manual_seed(1)  # the same dropout masks on both sides
    diagram_value = compiled(N=batch).total
    diagram_value.backward()
    torch.manual_seed(1)
    hand_value = ex.hand_step_loss(variant, hand_teacher, hand_student)(*batch)
    hand_value.backward()

    assert hand_value.item() > 0.1
    assert abs(diagram_value.item() - hand_value.item()) <= 1e-6
    diagram_grads = {f"{n}": p.grad for n, p in student.named_parameters()}
    if variant == "regressor":
        diagram_grads.update({f"regressor.{n}": p.grad for n, p in regressor.named_parameters()})
    hand_grads = {n: p.grad for n, p in hand_student.named_parameters()}
    assert set(diagram_grads) == set(hand_grads)
    for name, g in hand_grads.items():
        assert g is not None and diagram_grads[name] is not None, name
        assert (diagram_grads[name] - g).abs().max().item() <= 1e-6, name
    assert sum(g.abs().sum().item() for g in hand_grads.values()) > 0
    assert all(p.grad is None for p in teacher.parameters())  # the teacher is frozen


def test_the_regressor_is_a_trainable_edge_of_the_compiled_loss(batch, trained):
    teacher, student, regressor = models_from(trained)
    compiled = ex.regressor_distillation(teacher, student, regressor, [batch]).compile()
    assert compiled.trainable_maps()["regressor"] is regressor
    params = {id(p) for p in compiled.parameters()}
    assert {id(p) for p in regressor.parameters()} <= params
    assert {id(p) for p in student.parameters()} <= params
    assert not params & {id(p) for p in teacher.parameters()}
    before, teacher_before = regressor.weight.detach().clone(), teacher.features[0].weight.detach().clone()
    ld.fit(
        ex.regressor_distillation(teacher, student, regressor, [batch]),
        epochs=1,
        lr=1e-3,
        device="cpu",
        log_dir=False,
        progress=False,
    )
    assert not torch.equal(regressor.weight, before)
    assert torch.equal(teacher.features[0].weight, teacher_before)


def test_epoch_batches_reshuffle_every_epoch_and_repeat_for_a_seed():
    train, _ = datasets.digits(limit=300)
    a, b = ex.EpochBatches(train, 128, 0), ex.EpochBatches(train, 128, 0)
    first, second = [y for _, y in a.epoch(0)], [y for _, y in a.epoch(1)]
    assert len(a) == len(first) == 3 and sum(len(y) for y in first) == 300
    assert not all(torch.equal(u, v) for u, v in zip(first, second))
    assert all(torch.equal(u, v) for u, v in zip(first, [y for _, y in iter(b)]))  # pass 0 ...
    assert all(torch.equal(u, v) for u, v in zip(second, [y for _, y in iter(b)]))  # ... then pass 1


def test_the_diagrams_curves_equal_the_hand_written_loops_step_for_step(capsys):
    # two epochs, so that each epoch's own batch order is checked too
    results = ex.main(["--hand", "--seeds", "0", "--epochs", "2", "--limit", "512", "--quiet", "--dataset", "digits"])
    out = capsys.readouterr().out
    assert results["variants"] == list(ex.VARIANTS) and results["losses"] == "tutorial"
    assert set(results["curve_gap"]) == {"teacher", "student", *ex.VARIANTS}
    assert all(gap <= 1e-6 for gap in results["curve_gap"].values()), results["curve_gap"]
    assert all(steps == 8 for steps in results["steps"].values())  # 512 images in batches of 128, twice
    for name, values in results["accuracy"]["diagram"].items():
        assert values == pytest.approx(results["accuracy"]["hand"][name], abs=1e-6), name
    assert "hand-written" in out and "distilled, regressor" in out
    assert all(0.0 <= v <= 100.0 for values in results["accuracy"]["diagram"].values() for v in values)


@pytest.mark.skipif(shutil.which("dot") is None, reason="drawing needs Graphviz's dot")
def test_every_variant_is_drawn(tmp_path):
    paths = ex.draw(tmp_path)
    assert [p.name for p in paths] == ["distillation.svg", "distillation-cosine.svg", "distillation-regressor.svg"]
    assert all(p.read_text().lstrip().startswith(("<?xml", "<svg")) for p in paths)


def test_without_hand_only_the_diagrams_run_and_seeds_are_summarised(capsys):
    results = ex.main(["--variants", "kd", "--seeds", "0,1", "--epochs", "1", "--limit", "128", "--quiet"])
    out = capsys.readouterr().out
    assert set(results["accuracy"]) == {"diagram"} and results["curve_gap"] == {}
    assert set(results["accuracy"]["diagram"]) == {"teacher", "student", "kd"}
    assert all(len(values) == 2 for values in results["accuracy"]["diagram"].values())
    assert "mean ± std over 2 seeds" in out and "hand-written" not in out.split("Test accuracy")[1]
