"""The Lightning adapter: logging, frozen maps, optimisers, DDP equivalence, the optional import."""

import csv
import functools
import math
import operator
import subprocess
import sys
import textwrap
import warnings

import lightning
import pytest
import torch
from lightning.fabric.utilities.warnings import PossibleUserWarning
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import learning_diagrams as ld
from learning_diagrams.integrations.lightning import DiagramModule

# Lightning advises more DataLoader workers on machines with more than two cores per process:
# a third-party hint about the machine, not about the code under test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The '.*_dataloader' does not have many workers:lightning.fabric.utilities.warnings.PossibleUserWarning"
)

TERMS = ("x·student ≤ y", "x·student ≤ x·teacher")


def regression(n=32, batch_size=8, *, seed=0, batchnorm=False, sampler=None):
    """A student learning labels and a frozen teacher at once; every map picklable (for ddp_spawn)."""
    torch.manual_seed(seed)
    x = torch.linspace(-2, 2, n * 3).reshape(n, 3)
    y = torch.sin(x).sum(dim=1, keepdim=True)
    data = TensorDataset(x, y)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, sampler=sampler and sampler(data))
    student = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    if batchnorm:
        teacher = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        teacher[1].running_mean.normal_()
        teacher[1].running_var.uniform_(0.5, 2.0)
    else:
        teacher = nn.Linear(3, 1)
    diagram = (
        ld.Diagram()
        .space("N", data=loader)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", operator.itemgetter(0))
        .map("y", "N", "Y", operator.itemgetter(1))
        .map("student", "X", "Y", student)
        .map("teacher", "X", "Y", teacher, trainable=False)
        .relate("x·student", "y")
        .relate("x·student", "x·teacher", weight=0.5)
    )
    return diagram, student, teacher


def trainer(tmp_path, **options):
    settings = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        default_root_dir=tmp_path,
    )
    return lightning.Trainer(**{**settings, **options})


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def metric_columns(logger):
    with open(f"{logger.log_dir}/metrics.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_term_is_logged_by_name(tmp_path):
    diagram, _, _ = regression()
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    module = DiagramModule(
        diagram, optimizer=torch.optim.SGD, lr=0.05, val_data={"N": DataLoader(TensorDataset(x, y), batch_size=4)}
    )
    assert [pair.name for pair in module.loss.pairs] == list(TERMS)
    logger = CSVLogger(tmp_path)
    trainer(tmp_path, logger=logger).fit(module)
    rows = metric_columns(logger)
    columns = set(rows[0])
    for stage in ("train", "val"):
        assert {f"{stage}/{name}" for name in TERMS} | {f"{stage}/total"} <= columns
    train = [r for r in rows if r["train/total"]]
    assert len(train) == 2 * 4  # every step of 2 epochs of 4 batches
    for r in train:  # the total is the sum of the logged (weighted) terms
        assert float(r["train/total"]) == pytest.approx(sum(float(r[f"train/{n}"]) for n in TERMS), rel=1e-5)
    assert len([r for r in rows if r["val/total"]]) == 2  # once per epoch


def test_frozen_batchnorm_map_is_untouched_by_fit_and_validation(tmp_path):
    diagram, student, teacher = regression(batchnorm=True)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    module = DiagramModule(
        diagram, optimizer=torch.optim.SGD, lr=0.1, val_data={"N": DataLoader(TensorDataset(x, y), batch_size=4)}
    )
    teacher_before, student_before = snapshot(teacher), snapshot(student)

    class Modes(Callback):  # the modes each step actually ran in
        def __init__(self):
            self.seen = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append(("train", teacher.training, teacher[1].training, student.training))

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            self.seen.append(("val", teacher.training, teacher[1].training, student.training))

    modes = Modes()
    trainer(tmp_path, callbacks=[modes]).fit(module)  # sanity check, then train and validate twice

    stages = [s for s, *_ in modes.seen]
    assert stages.count("train") == 8 and stages.count("val") == 2 + 2 * 2
    assert stages.index("train") < len(stages) - stages[::-1].index("val") - 1  # training after validation
    assert all(not t and not bn for _, t, bn, _ in modes.seen)  # the frozen map: eval mode throughout
    assert [s for s, *_, trains in modes.seen if trains] == ["train"] * 8  # the student: train mode in training only
    for name, value in snapshot(teacher).items():  # weights and running statistics alike
        assert torch.equal(value, teacher_before[name]), name
    assert not any(m.training for m in teacher.modules())
    assert student.training
    assert any(not torch.equal(v, student_before[k]) for k, v in snapshot(student).items())


def test_ddp_two_processes_end_where_one_process_does(tmp_path, monkeypatch):
    # Two DDP processes with batches of 4 each, and one process with batches of 8. Under DDP,
    # Lightning gives each training loader a DistributedSampler that shuffles (even though the
    # DataLoader does not) with seed PL_GLOBAL_SEED + epoch, and rank r takes positions r, r+2, ...
    # of that permutation: so every step the two ranks together see the batch that one process
    # sees with a one-replica DistributedSampler of the same seed, and DDP's mean of their two
    # mean-loss gradients is the one process's gradient.
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")  # the spawned processes inherit it
    single, *_ = regression(batch_size=8, sampler=functools.partial(DistributedSampler, num_replicas=1, rank=0, seed=7))
    one = DiagramModule(single, optimizer=torch.optim.SGD, lr=0.2)
    initial = snapshot(one)
    trainer(tmp_path / "one").fit(one)

    double, *_ = regression(batch_size=4)
    two = DiagramModule(double, optimizer=torch.optim.SGD, lr=0.2)
    for k, v in snapshot(two).items():
        assert torch.equal(v, initial[k]), k
    ddp = trainer(tmp_path / "two", strategy="ddp_spawn", devices=2)
    ddp.fit(two)  # ddp_spawn loads rank 0's trained weights back into `two`
    assert ddp.world_size == 2

    moved = max((one.state_dict()[k] - initial[k]).abs().max().item() for k in initial)
    assert moved > 1e-2  # training did change the weights, far beyond the tolerance below
    for k, v in two.state_dict().items():
        torch.testing.assert_close(v, one.state_dict()[k], atol=1e-5, rtol=0, msg=k)


def test_importing_the_library_needs_no_lightning_and_the_adapter_says_how_to_install_it():
    code = textwrap.dedent(
        """
        import sys
        import learning_diagrams
        loaded = [m for m in sys.modules if m == "lightning" or m.startswith("lightning.")]
        assert not loaded, loaded
        sys.modules["lightning"] = None  # as if it were not installed
        try:
            import learning_diagrams.integrations.lightning
        except ImportError as err:
            print(err)
        else:
            print("imported")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install 'learning-diagrams[lightning]'" in result.stdout


def test_optimizer_class_with_lr_and_options_or_factory_over_trainable_parameters_only():
    diagram, student, _ = regression()
    student_params = [id(p) for p in student.parameters()]

    def params(optimizer):
        return [id(p) for group in optimizer.param_groups for p in group["params"]]

    default = DiagramModule(diagram).configure_optimizers()
    assert type(default) is torch.optim.Adam and default.defaults["lr"] == 1e-3
    assert params(default) == student_params  # not the frozen teacher's

    sgd = DiagramModule(diagram, optimizer=torch.optim.SGD, lr=0.05, optimizer_kwargs={"momentum": 0.9})
    sgd = sgd.configure_optimizers()
    assert type(sgd) is torch.optim.SGD and (sgd.defaults["lr"], sgd.defaults["momentum"]) == (0.05, 0.9)
    assert params(sgd) == student_params

    factory = DiagramModule(diagram, optimizer=functools.partial(torch.optim.RMSprop, lr=0.3)).configure_optimizers()
    assert type(factory) is torch.optim.RMSprop and factory.defaults["lr"] == 0.3
    assert params(factory) == student_params

    def with_schedule(ps):
        opt = torch.optim.SGD(ps, lr=1.0)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1)}

    assert set(DiagramModule(diagram, optimizer=with_schedule).configure_optimizers()) == {"optimizer", "lr_scheduler"}

    with pytest.raises(ValueError, match="factory"):
        DiagramModule(diagram, optimizer=with_schedule, lr=0.1)
    with pytest.raises(ValueError, match="factory"):
        DiagramModule(diagram, optimizer=with_schedule, optimizer_kwargs={"momentum": 0.9})
    with pytest.raises(ValueError, match="lr="):
        DiagramModule(diagram, optimizer=torch.optim.SGD, optimizer_kwargs={"lr": 0.1})
    with pytest.raises(TypeError, match="optimiser class"):
        DiagramModule(diagram, optimizer="adam")


def test_a_factory_optimizer_trains_with_lightning(tmp_path):
    diagram, student, _ = regression()
    before = snapshot(student)
    module = DiagramModule(diagram, optimizer=functools.partial(torch.optim.SGD, lr=0.0))
    trainer(tmp_path, max_epochs=1).fit(module)
    assert all(torch.equal(v, before[k]) for k, v in snapshot(student).items())  # lr 0 came from the factory
    module = DiagramModule(diagram, optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    trainer(tmp_path, max_epochs=1).fit(module)
    assert any(not torch.equal(v, before[k]) for k, v in snapshot(student).items())


def two_sources(n_long=12, n_short=4):
    """Pairs from two source vertices whose loaders differ in length (3 and 1 batches of 4)."""
    torch.manual_seed(1)
    f = nn.Linear(2, 1)
    long_ = DataLoader(TensorDataset(torch.randn(n_long, 2), torch.randn(n_long, 1)), batch_size=4)
    short = DataLoader(TensorDataset(torch.randn(n_short, 2), torch.randn(n_short, 1)), batch_size=4)
    diagram = (
        ld.Diagram()
        .space("N", data=long_)
        .space("M", data=short)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", operator.itemgetter(0))
        .map("y", "N", "Y", operator.itemgetter(1))
        .map("u", "M", "X", operator.itemgetter(0))
        .map("v", "M", "Y", operator.itemgetter(1))
        .map("f", "X", "Y", f)
        .relate("x·f", "y")
        .relate("u·f", "v")
    )
    return diagram, f


@pytest.mark.parametrize(
    ("mode", "steps", "m_steps"), [("max_size_cycle", 3, 3), ("min_size", 1, 1), ("max_size", 3, 1)]
)
def test_modes_combine_the_sources_loaders(tmp_path, mode, steps, m_steps):
    diagram, _ = two_sources()
    module = DiagramModule(diagram, optimizer=torch.optim.SGD, lr=0.01, mode=mode)
    logger = CSVLogger(tmp_path)
    trainer(tmp_path, logger=logger, max_epochs=1).fit(module)
    rows = [r for r in metric_columns(logger) if r["train/total"]]
    assert len(rows) == steps
    # with max_size, M's term stops with M's data (logged as NaN, not as its last value)
    assert [math.isnan(float(r["train/u·f ≤ v"])) for r in rows] == [False] * m_steps + [True] * (steps - m_steps)
    assert not any(math.isnan(float(r["train/x·f ≤ y"])) for r in rows)


def test_a_missing_batch_leaves_out_its_sources_terms_only():
    diagram, _ = two_sources()
    module = DiagramModule(diagram, mode="max_size")
    n, m = next(iter(diagram.spaces["N"].data)), next(iter(diagram.spaces["M"].data))
    full = module.losses({"N": n, "M": m})
    part = module.losses({"N": n, "M": None})
    assert list(full.terms) == ["x·f ≤ y", "u·f ≤ v"] and list(part.terms) == ["x·f ≤ y"]
    assert torch.equal(part.total, full.terms["x·f ≤ y"])
    part.total.backward()
    assert all(p.grad is not None for p in module.loss.parameters())  # the same modules as the full loss
    with pytest.raises(ValueError, match="no source vertex has a batch"):
        module.losses({"N": None, "M": None})
    with pytest.raises(ld.errors.UnknownNameError, match="'Z'"):
        module.losses({"N": n, "Z": m})


def test_bad_data_and_modes_are_refused_clearly():
    x, y = torch.randn(4, 2), torch.randn(4, 1)
    as_list = (
        ld.Diagram()
        .space("N", data=[(x, y)])
        .space("Y", loss=ld.losses.mse)
        .map("f", "N", "Y", lambda b: b[0].sum(1, keepdim=True))
        .map("y", "N", "Y", operator.itemgetter(1))
        .relate("f", "y")
    )
    with pytest.raises(ld.errors.TypeMismatchError, match=r"vertex 'N' is a list.*DataLoader"):
        DiagramModule(as_list)
    diagram, _, _ = regression()
    with pytest.raises(ld.errors.TypeMismatchError, match=r"validation data of vertex 'N'.*DataLoader"):
        DiagramModule(diagram, val_data={"N": [(x, y)]})
    with pytest.raises(ld.errors.UnknownNameError, match="'X', which is not a source"):
        DiagramModule(diagram, val_data={"X": DataLoader(TensorDataset(x, y))})
    with pytest.raises(ValueError, match="fit loop does not support"):
        DiagramModule(diagram, mode="sequential")
    with pytest.raises(ValueError, match="unknown mode 'longest'"):
        DiagramModule(diagram, mode="longest")


def test_lightning_still_warns_about_a_trainable_map_left_in_eval_mode(tmp_path):
    # The adapter silences Lightning's eval-mode warning only when frozen maps are all it is about.
    diagram, student, _ = regression()
    module = DiagramModule(diagram, optimizer=torch.optim.SGD, lr=0.01)
    filters = list(warnings.filters)
    student.eval()
    with pytest.warns(PossibleUserWarning, match=r"module\(s\) in eval mode"):
        trainer(tmp_path, max_epochs=1).fit(module)
    assert warnings.filters == filters


def test_checkpoint_restores_into_a_module_of_the_same_diagram(tmp_path):
    diagram, student, _ = regression()
    module = DiagramModule(diagram, optimizer=torch.optim.SGD, lr=0.1)
    t = trainer(tmp_path, max_epochs=1)
    t.fit(module)
    t.save_checkpoint(tmp_path / "m.ckpt")
    trained = snapshot(module)
    fresh, fresh_student, _ = regression(seed=5)
    restored = DiagramModule.load_from_checkpoint(tmp_path / "m.ckpt", diagram=fresh)
    assert set(trained) == set(restored.state_dict()) and any(k.startswith("loss.maps.teacher.") for k in trained)
    for k, v in restored.state_dict().items():
        assert torch.equal(v, trained[k]), k
    assert torch.equal(fresh_student[0].weight, student[0].weight)


# ---------------------------------------------------------------------------- non-finite numbers


class BreaksAt(nn.Module):
    """A linear map whose output is NaN from its ``at``-th call in training on."""

    def __init__(self, at):
        super().__init__()
        self.linear, self.at, self.calls = nn.Linear(3, 1), at, 0

    def forward(self, v):
        self.calls += self.training
        out = self.linear(v)
        return out * math.nan if self.calls >= self.at else out


def breaking(at, n=32):
    torch.manual_seed(0)
    x = torch.randn(n, 3)
    return (
        ld.Diagram()
        .space("N", data=DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8))
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", operator.itemgetter(0))
        .map("y", "N", "Y", operator.itemgetter(1))
        .map("f", "X", "Y", BreaksAt(at))
        .relate("x·f", "y")
    )


def test_a_step_that_is_not_finite_raises_naming_the_step_the_term_and_the_edge(tmp_path):
    module = DiagramModule(breaking(3), optimizer=torch.optim.SGD, lr=0.01)
    with pytest.raises(ld.NonFiniteError, match=r"^step 3: the total loss is nan; term 'x·f ≤ y' is nan: edge 'f'"):
        trainer(tmp_path).fit(module)
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_skip_drops_the_gradients_of_a_non_finite_step_and_warns_at_the_end(tmp_path):
    module = DiagramModule(breaking(10**9), optimizer=torch.optim.SGD, lr=0.01, on_nonfinite="skip")
    f = module.loss.maps["f"]

    class OneBadStep(Callback):  # step 2's gradients are NaN: it must leave the weights as step 1 did
        def __init__(self):
            self.weights = []

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            if trainer.global_step == 1:
                f.linear.weight.grad.fill_(math.nan)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.weights.append(f.linear.weight.detach().clone())

    watch = OneBadStep()
    with pytest.warns(RuntimeWarning, match=r"^1 optimiser step\(s\) were skipped .* step 2: a gradient holds nan"):
        trainer(tmp_path, max_epochs=1, callbacks=[watch]).fit(module)
    first, second, third = watch.weights[:3]
    assert torch.equal(first, second) and not torch.equal(second, third)


def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path):
    module = DiagramModule(breaking(3), optimizer=torch.optim.SGD, lr=0.01, on_nonfinite="warn")
    checkpoints = lightning.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1)
    refused = r"^the checkpoint of step 3 was not written: the weights of 'f'"
    with (
        pytest.warns(RuntimeWarning, match="^step 3: the total loss is nan"),
        pytest.raises(ld.NonFiniteError, match=refused),
    ):
        trainer(tmp_path, enable_checkpointing=True, callbacks=[checkpoints]).fit(module)
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["epoch=0-step=2.ckpt"]


def test_a_diagram_with_nothing_to_train_is_refused_naming_its_maps():
    diagram, _, _ = regression()
    module = DiagramModule(diagram.freeze("student"))
    with pytest.raises(ld.errors.OptionError, match=r"^the diagram has nothing to train.*'student' \(frozen\)"):
        module.configure_optimizers()
