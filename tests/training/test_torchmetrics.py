"""torchmetrics metrics in metrics=: one copy per pair, exact over all the held-out data."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

import learning_diagrams as ld
from learning_diagrams.training import evaluate

QUIET = dict(progress=False, log_dir=False)
A, B = "x·a ≤ y", "x·b ≤ y"


def data(n=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, torch.randint(0, 3, (n,), generator=g))


def two_classifiers(train):
    """Two linear classifiers of the same labels: two pairs end at Y."""
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    d = ld.Diagram().space("N", data=train).space("X").space("Y", loss=ld.losses.cross_entropy)
    d.map("x", "N", "X", lambda batch: batch[0]).map("y", "N", "Y", lambda batch: batch[1])
    d.map("a", "X", "Y", a).map("b", "X", "Y", b)
    return d.relate("x·a", "y").relate("x·b", "y"), (a, b)


def test_each_pair_gets_its_own_copy_computed_over_all_the_data():
    held = data()
    d, models = two_classifiers(DataLoader(held, batch_size=5))
    f1 = MulticlassF1Score(num_classes=3, average="macro")
    values = evaluate(d.compile(), {"N": DataLoader(held, batch_size=5)}, {"Y": [f1, "accuracy"]})
    x, y = held.tensors
    with torch.no_grad():
        for pair, model in zip((A, B), models):
            exact = multiclass_f1_score(model(x), y, num_classes=3, average="macro").item()
            batch_mean = sum(
                len(yb) * multiclass_f1_score(model(xb), yb, num_classes=3, average="macro").item()
                for xb, yb in DataLoader(held, batch_size=5)
            ) / len(y)
            assert values[f"MulticlassF1Score[{pair}]"] == pytest.approx(exact, abs=1e-6)
            assert abs(exact - batch_mean) > 1e-3  # so a mean of batch scores would fail the line above
            assert values[f"accuracy[{pair}]"] == pytest.approx(multiclass_accuracy(model(x), y, average="micro"))
    assert not f1.update_called  # the metric given is left as it was


def test_the_trainer_reports_a_torchmetrics_metric_in_its_eval_records():
    held = data(12, 1)
    d, _ = two_classifiers([held.tensors])
    history = ld.fit(d, epochs=2, eval_data={"N": [held.tensors]}, metrics={"Y": MulticlassAccuracy(3)}, **QUIET)
    evals = [r for r in history.records if r["split"] == "eval"]
    assert len(evals) == 2 and all(f"MulticlassAccuracy[{B}]" in r["values"] for r in evals)


def test_metrics_given_as_a_mapping_are_named_by_its_keys_and_names_must_differ():
    held = data(10, 2)
    d, _ = two_classifiers([held.tensors])
    loss = d.compile()
    metrics = {"top1": MulticlassAccuracy(3, top_k=1), "top2": MulticlassAccuracy(3, top_k=2)}
    values = evaluate(loss, {"N": held.tensors}, {"Y": metrics})
    assert values[f"top1[{A}]"] <= values[f"top2[{A}]"]
    assert set(values) == {"total", A, B} | {f"{k}[{p}]" for k in metrics for p in (A, B)}
    with pytest.raises(ld.errors.DuplicateNameError, match="named 'MulticlassAccuracy'"):
        evaluate(loss, {"N": held.tensors}, {"Y": list(metrics.values())})


def test_a_metric_that_computes_several_numbers_or_is_no_metric_is_refused():
    held = data(10, 3)
    d, _ = two_classifiers([held.tensors])
    per_class = MulticlassAccuracy(3, average=None)
    with pytest.raises(ld.errors.TypeMismatchError, match=r"computed 3 numbers.*average='macro'"):
        evaluate(d.compile(), {"N": held.tensors}, {"Y": per_class})
    with pytest.raises(TypeError, match="metric 3 for vertex 'Y' is none of"):
        evaluate(d.compile(), {"N": held.tensors}, {"Y": 3})


def test_metrics_by_name_never_import_torchmetrics():
    code = textwrap.dedent(
        """
        import sys, torch, learning_diagrams as ld
        d = (ld.Diagram().space("N", data=[(torch.ones(4, 2), torch.zeros(4, dtype=torch.long))]).space("X")
             .space("Y", loss=ld.losses.cross_entropy).map("x", "N", "X", lambda b: b[0])
             .map("y", "N", "Y", lambda b: b[1]).map("f", "X", "Y", torch.nn.Linear(2, 3)).relate("x·f", "y"))
        values = ld.fit(d, epochs=1, eval_data={"N": [d.spaces["N"].data[0]]}, metrics={"Y": "accuracy"},
                        progress=False, log_dir=False).last("accuracy[x·f ≤ y]", split="eval")
        assert "torchmetrics" not in sys.modules
        print(values)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 0.0 <= float(result.stdout) <= 1.0
