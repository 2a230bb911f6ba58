import csv
import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import learning_diagrams as ld
from learning_diagrams.training import CombinedBatches
from learning_diagrams.training.checkpoint import latest_checkpoint

QUIET = dict(progress=False, log_dir=False)


def dataset(n, seed, classes=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return TensorDataset(x, (x[:, :3].argmax(dim=1) % classes))


def classifier(model, data, loss=ld.losses.cross_entropy):
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=loss)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("model", "X", "L", model)
        .map("hard", "L", "Y", nn.Identity())
        .relate("x·model·hard", "y")
    )


def distillation(teacher, student, data):
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )


def two_heads(backbone, heads, n_data, m_data):
    """One backbone glued to two classifier heads, each with its own data set."""
    d = ld.Diagram().space("N", data=n_data).space("M", data=m_data).space("X").space("F")
    d.space("Y1", loss=ld.losses.cross_entropy).space("Y2", loss=ld.losses.cross_entropy)
    d.map("xn", "N", "X", lambda b: b[0]).map("xm", "M", "X", lambda b: b[0])
    d.map("yn", "N", "Y1", lambda b: b[1]).map("ym", "M", "Y2", lambda b: b[1])
    d.map("backbone", "X", "F", backbone).map("h1", "F", "Y1", heads[0]).map("h2", "F", "Y2", heads[1])
    return d.relate("xn·backbone·h1", "yn").relate("xm·backbone·h2", "ym")


def mlp(seed, width=16, out=3, dropout=0.2):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, out))


def regime():
    """Two stages sharing model objects: train a teacher, then distil it into a student."""
    data = DataLoader(dataset(40, 0), batch_size=8, shuffle=True)
    teacher, student = mlp(1, 32), mlp(2, 8)
    stages = [
        ld.Stage(classifier(teacher, data), epochs=2, name="teacher"),
        ld.Stage(distillation(teacher, student, data), epochs=2, name="distil", lr=5e-3),
    ]
    return stages, (teacher, student)


def parameters(models):
    return [p.detach().clone() for m in models for p in m.parameters()]


@pytest.mark.parametrize("stop", [3, 13], ids=["mid-epoch-of-stage-1", "mid-epoch-of-stage-2"])
def test_a_resumed_run_ends_bit_for_bit_where_the_uninterrupted_one_does(tmp_path, stop):
    options = dict(seed=7, scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5), **QUIET)
    stages, models = regime()
    ld.fit(stages, checkpoint_dir=tmp_path / "whole", **options)
    expected = parameters(models)

    stages, models = regime()
    ld.fit(stages, checkpoint_dir=tmp_path / "cut", max_steps=stop, **options)
    stopped = parameters(models)
    stages, models = regime()  # a new process would rebuild its models the same way
    ld.fit(stages, checkpoint_dir=tmp_path / "cut", resume=tmp_path / "cut", **options)
    resumed = parameters(models)

    assert any(not torch.equal(a, b) for a, b in zip(stopped, expected))  # it did stop early
    assert all(torch.equal(a, b) for a, b in zip(resumed, expected))


class Crash(BaseException):  # as KeyboardInterrupt: not wrapped as a MapError
    pass


def test_a_resumed_run_logs_each_step_once(tmp_path):
    """A crash at step 15, after the step-12 checkpoint: the records of steps 13 and 14 are
    dropped from the files on resuming, so both logs end up equal to an unbroken run's."""
    # cache=False: the crash is timed by counting calls of the map x, which a frozen-output cache
    # would make at other moments (it computes a frozen teacher's inputs for every sample at once).
    options = dict(seed=3, progress=False, log_every=1, checkpoint_every=6, eval_data=None, plot=False, cache=False)

    def run(name, crash_at=None, resume=False):
        stages, _ = regime()
        calls = 0

        def images(batch):
            nonlocal calls
            calls += 1
            if calls == crash_at:
                raise Crash
            return batch[0]

        for stage in stages:
            stage.diagram.maps["x"].fn = images
        folder = tmp_path / name
        return ld.fit(
            stages,
            log_dir=folder / "logs",
            checkpoint_dir=folder / "ckpt",
            resume=folder / "ckpt" if resume else None,
            **options,
        )

    whole = run("whole")
    with pytest.raises(Crash):
        run("cut", crash_at=15)
    crashed = (tmp_path / "cut" / "logs" / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in crashed] == list(range(1, 15))
    assert latest_checkpoint(tmp_path / "cut" / "ckpt").name.endswith("12")
    resumed = run("cut", resume=True)

    for name in ("log.jsonl", "log.csv"):
        expected = (tmp_path / "whole" / "logs" / name).read_text(encoding="utf-8")
        assert (tmp_path / "cut" / "logs" / name).read_text(encoding="utf-8") == expected
    assert resumed.rows() == whole.rows()


def test_resuming_from_an_empty_directory_says_so(tmp_path):
    stages, _ = regime()
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        ld.fit(stages, resume=tmp_path, **QUIET)


class WithBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.net(x)


def test_frozen_maps_and_their_batchnorm_statistics_stay_unchanged(tmp_path):
    torch.manual_seed(0)
    teacher, student = WithBatchNorm(), mlp(3, 8)
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    data = DataLoader(dataset(32, 1), batch_size=8, shuffle=True)
    ld.fit(distillation(teacher, student, data), epochs=2, eval_data={"N": data}, metrics={"Y": "accuracy"}, **QUIET)
    assert not teacher.training and all(not m.training for m in teacher.modules())
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert student.training  # trainable maps are left in train mode


def test_every_compiled_pair_is_logged_by_name_to_csv_jsonl_and_history(tmp_path):
    torch.manual_seed(0)
    data = DataLoader(dataset(16, 2), batch_size=8)
    d = distillation(mlp(1), mlp(2), data)
    names = {p.name for p in d.parallel_pairs()} | {"total"}
    history = ld.fit(d, epochs=2, log_dir=tmp_path, progress=False, eval_data={"N": data}, metrics={"Y": "accuracy"})
    with open(tmp_path / "log.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["name"] for r in rows if r["split"] == "train"} == names
    assert {int(r["step"]) for r in rows if r["split"] == "train"} == {1, 2, 3, 4}
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(set(r["values"]) == names for r in records if r["split"] == "train")
    assert "accuracy[x·student·hard ≤ y]" in records[-1]["values"]
    assert set(history.names("train")) == names
    assert (tmp_path / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_policies_combine_data_sets_of_different_sizes():
    short, long = list(range(2)), list(range(5))
    assert len(CombinedBatches({"A": short, "B": long})) == 5
    assert len(CombinedBatches({"A": short, "B": long}, policy="min_size")) == 2
    steps = CombinedBatches({"A": short, "B": long}, policy="steps", steps_per_epoch=3)
    assert [b["A"] for b in steps.epoch()] + [b["A"] for b in steps.epoch()] == [0, 1, 0, 1, 0, 1]
    padded = CombinedBatches({"A": short, "B": long}, policy="max_size")
    assert [b["A"] for b in padded.epoch()] == [0, 1, None, None, None]
    with pytest.raises(ValueError, match="unknown policy 'longest'"):
        CombinedBatches({"A": short}, policy="longest")


def test_a_resumed_epoch_draws_the_same_batches_as_an_unbroken_one():
    loader = DataLoader(dataset(20, 3), batch_size=4, shuffle=True)
    whole = CombinedBatches({"N": loader}, seed=5)
    first = [b["N"][1].tolist() for b in whole.epoch()]
    second = [b["N"][1].tolist() for b in whole.epoch()]
    cut = CombinedBatches({"N": loader}, seed=5)
    list(cut.epoch())
    partial = cut.epoch()
    drawn = [next(partial)["N"][1].tolist() for _ in range(2)]
    state = cut.state_dict()
    again = CombinedBatches({"N": loader}, seed=5)
    again.load_state_dict(state)
    rest = [b["N"][1].tolist() for b in again.epoch(start=2)]
    assert first != second  # each pass is shuffled anew
    assert drawn + rest == second


def test_gradient_accumulation_equals_the_larger_batch():
    data = dataset(32, 4)
    small, large = mlp(5, dropout=0.0), mlp(5, dropout=0.0)
    sgd = dict(optimizer=torch.optim.SGD, lr=0.1, **QUIET)
    ld.fit(classifier(small, DataLoader(data, batch_size=4)), accumulate=2, **sgd)
    ld.fit(classifier(large, DataLoader(data, batch_size=8)), **sgd)
    for p, q in zip(small.parameters(), large.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_per_map_optimisers_and_learning_rates():
    backbone, heads = mlp(0, out=8), [nn.Linear(8, 3), nn.Linear(8, 3)]
    d = two_heads(backbone, heads, [dataset(8, 0).tensors], [dataset(8, 1).tensors])
    trainer = ld.Trainer(lrs={"h1": 0.5}, optimizers={"h2": lambda groups: torch.optim.SGD(groups, lr=0.25)}, **QUIET)
    run_loss = d.compile()
    from learning_diagrams.training.trainer import _Run

    optimizers = _Run(trainer, [ld.Stage(d)])._optimizers(run_loss, ld.Stage(d))
    adam, sgd = optimizers
    assert isinstance(adam, torch.optim.Adam) and isinstance(sgd, torch.optim.SGD)
    assert [(g["map"], g["lr"]) for g in adam.param_groups] == [("backbone", 1e-3), ("h1", 0.5)]
    assert [(g["map"], g["lr"]) for g in sgd.param_groups] == [("h2", 0.25)]
    with pytest.raises(ld.errors.UnknownNameError, match="learning rate or optimiser given for 'h3'"):
        ld.fit(d, lrs={"h3": 0.1}, **QUIET)


def test_schedulers_clipping_and_precision():
    data = DataLoader(dataset(16, 5), batch_size=8)
    model = mlp(6)
    seen = []
    model.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    history = ld.fit(
        classifier(model, data),
        epochs=2,
        precision="bf16",
        clip_grad_norm=0.5,
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.1),
        scheduler_interval="step",
        **QUIET,
    )
    assert len(history.records) == 4 and seen == [torch.bfloat16] * 4
    with pytest.raises(ValueError, match="precision '8' is not one of"):
        ld.Trainer(precision="8")


# Dynamo reads a non-leaf .grad internally while tracing F.cross_entropy (a torch quirk).
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_torch_compile_of_the_compiled_loss_trains():
    model = mlp(6, dropout=0.0)
    history = ld.fit(
        classifier(model, DataLoader(dataset(16, 5), batch_size=8)), epochs=3, lr=0.05, compile="eager", **QUIET
    )
    assert history.last("total") < history.records[0]["values"]["total"]


def test_stages_share_models_and_each_stage_has_its_own_epochs():
    stages, (teacher, student) = regime()
    history = ld.fit(stages, **QUIET)
    assert [r["stage"] for r in history.records] == [0] * 10 + [1] * 10
    assert not any(p.requires_grad for p in teacher.parameters())  # frozen in the second stage


def backbone_and_heads():
    """The same seeded backbone and two heads in every process."""
    backbone, heads = mlp(0, out=8, dropout=0.0), [nn.Linear(8, 3), nn.Linear(8, 3)]
    for i, h in enumerate(heads):
        torch.manual_seed(10 + i)
        h.reset_parameters()
    return backbone, heads


def _ddp_worker(rank, world, init_file, out_file, policy):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        backbone, heads = backbone_and_heads()
        n, m = DataLoader(dataset(16, 0), batch_size=4), DataLoader(dataset(4, 1), batch_size=2)
        d = two_heads(backbone, heads, n, m)
        ld.fit(d, epochs=2, optimizer=torch.optim.SGD, lr=0.1, strategy="ddp", policy=policy, **QUIET)
        if rank == 0:
            torch.save(
                [p.detach() for p in backbone.parameters()] + [p.detach() for h in heads for p in h.parameters()],
                out_file,
            )
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("policy", ["max_size_cycle", "max_size"], ids=["all-heads-busy", "a-head-idle"])
def test_two_process_ddp_ends_with_the_single_process_parameters(tmp_path, policy):
    # Under "max_size" the second data set runs out after one step of two: its head is idle in
    # the second step, which needs no find_unused_parameters since each map has its own DDP.
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ddp.pt"), policy), nprocs=2, join=True)
    backbone, heads = backbone_and_heads()
    n, m = DataLoader(dataset(16, 0), batch_size=8), DataLoader(dataset(4, 1), batch_size=4)
    history = ld.fit(
        two_heads(backbone, heads, n, m), epochs=2, optimizer=torch.optim.SGD, lr=0.1, policy=policy, **QUIET
    )
    idle = [len(r["values"]) for r in history.records] == [3, 2, 3, 2]
    assert idle == (policy == "max_size")
    single = [p.detach() for p in backbone.parameters()] + [p.detach() for h in heads for p in h.parameters()]
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert len(ddp) == len(single)
    for a, b in zip(ddp, single):
        assert torch.allclose(a, b, atol=1e-5)


def siamese(backbone, heads, n_data, m_data):
    """One backbone module on two edges (tied weights), each edge on its own data's path."""
    d = ld.Diagram().space("N", data=n_data).space("M", data=m_data)
    d.space("X").space("X2").space("F").space("F2")
    d.space("Y1", loss=ld.losses.cross_entropy).space("Y2", loss=ld.losses.cross_entropy)
    d.map("xn", "N", "X", lambda b: b[0]).map("xm", "M", "X2", lambda b: b[0])
    d.map("yn", "N", "Y1", lambda b: b[1]).map("ym", "M", "Y2", lambda b: b[1])
    d.map("b1", "X", "F", backbone).map("b2", "X2", "F2", backbone)
    d.map("h1", "F", "Y1", heads[0]).map("h2", "F2", "Y2", heads[1])
    return d.relate("xn·b1·h1", "yn").relate("xm·b2·h2", "ym")


def _ddp_siamese_worker(rank, world, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        backbone, heads = backbone_and_heads()
        n, m = DataLoader(dataset(16, 0), batch_size=4), DataLoader(dataset(8, 1), batch_size=2)
        ld.fit(siamese(backbone, heads, n, m), epochs=2, optimizer=torch.optim.SGD, lr=0.1, strategy="ddp", **QUIET)
        if rank == 0:
            torch.save([p.detach() for p in backbone.parameters()], out_file)
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_with_one_module_on_two_edges(tmp_path):
    # The module gets one DDP wrapper, called twice a step; its gradients are reduced once.
    mp.spawn(_ddp_siamese_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    backbone, heads = backbone_and_heads()
    before = [p.detach().clone() for p in backbone.parameters()]
    n, m = DataLoader(dataset(16, 0), batch_size=8), DataLoader(dataset(8, 1), batch_size=4)
    ld.fit(siamese(backbone, heads, n, m), epochs=2, optimizer=torch.optim.SGD, lr=0.1, **QUIET)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert any(not torch.equal(a, b) for a, b in zip(before, backbone.parameters()))
    for a, b in zip(ddp, backbone.parameters()):
        assert torch.allclose(a, b.detach(), atol=1e-5)


def test_held_out_data_given_as_one_full_batch_is_evaluated_whole():
    data = dataset(12, 6)
    d = classifier(mlp(0, dropout=0.0), [data.tensors])
    values = ld.Trainer(**QUIET).evaluate(d, {"N": data.tensors}, {"Y": "accuracy"})
    assert set(values) == {"total", "x·model·hard ≤ y", "accuracy[x·model·hard ≤ y]"}


def test_a_run_resumed_at_the_end_of_an_epoch_steps_its_scheduler_without_a_warning(tmp_path):
    """Stopped at step 5, the last of epoch 1: the resumed run's first act is the epoch's scheduler step,
    before any optimiser step of its own, which PyTorch would warn about (here an error)."""
    options = dict(seed=7, scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5), **QUIET)
    stages, models = regime()
    ld.fit(stages, **options)
    expected = parameters(models)
    stages, models = regime()
    ld.fit(stages, checkpoint_dir=tmp_path, max_steps=5, **options)
    stages, models = regime()
    ld.fit(stages, checkpoint_dir=tmp_path, resume=tmp_path, **options)
    assert all(torch.equal(a, b) for a, b in zip(parameters(models), expected))


def test_the_loss_plot_titles_each_stage_by_its_name(tmp_path, monkeypatch):
    titled = []
    plot = ld.History.plot
    monkeypatch.setattr(
        ld.History, "plot", lambda self, path, **kw: titled.append(kw.get("stages")) or plot(self, path, **kw)
    )
    data = DataLoader(dataset(16, 2), batch_size=8)
    d = distillation(mlp(1), mlp(2), data)
    ld.fit([ld.Stage(d, name="first"), ld.Stage(d)], epochs=1, log_dir=tmp_path, progress=False)
    assert titled == [{0: "first"}]  # the unnamed stage keeps "stage 1" as its title
    assert (tmp_path / "losses.png").is_file()
