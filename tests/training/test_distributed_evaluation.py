"""Evaluation under DDP: each process evaluates its share of the held-out data, and the sums are reduced."""

import json
import math

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassF1Score

import learning_diagrams as ld

QUIET = dict(progress=False, log_dir=False)
METRICS = {"Y1": ["accuracy", MulticlassF1Score(num_classes=3, average="macro")], "Y2": "accuracy"}


def dataset(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return TensorDataset(x, x[:, :3].argmax(dim=1))


def models():
    """A backbone with BatchNorm (buffers that DDP keeps in step) and two heads, seeded alike in every process."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
    return backbone, nn.Linear(8, 3), nn.Linear(8, 3)


def two_heads(backbone, h1, h2, n_data, m_data):
    d = ld.Diagram().space("N", data=n_data).space("M", data=m_data).space("X").space("F")
    d.space("Y1", loss=ld.losses.cross_entropy).space("Y2", loss=ld.losses.cross_entropy)
    d.map("xn", "N", "X", lambda b: b[0]).map("xm", "M", "X", lambda b: b[0])
    d.map("yn", "N", "Y1", lambda b: b[1]).map("ym", "M", "Y2", lambda b: b[1])
    d.map("backbone", "X", "F", backbone).map("h1", "F", "Y1", h1).map("h2", "F", "Y2", h2)
    return d.relate("xn·backbone·h1", "yn").relate("xm·backbone·h2", "ym")


def held_out():
    """Shares of unequal sizes: 9 samples in batches of 4 (5 and 4 a process), 3 batches (2 and 1)."""
    m = dataset(9, 2).tensors
    return {"N": DataLoader(dataset(9, 1), batch_size=4), "M": [(m[0][i : i + 3], m[1][i : i + 3]) for i in (0, 3, 6)]}


def held_out_otherwise():
    """One full batch (evaluated by rank 0) and a bare Dataset (batched, then shared)."""
    return {"N": dataset(7, 3).tensors, "M": dataset(11, 4)}


class Tracker:
    """Lightning's logger interface, writing one line a call to a file of its process's rank."""

    def __init__(self, folder):
        self.folder = folder

    def log_metrics(self, metrics, step):
        with open(f"{self.folder}/tracker-{dist.get_rank()}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


def _worker(rank, world, init_file, folder):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        backbone, h1, h2 = models()
        evaluated = []  # the samples this process evaluates (the backbone runs in eval mode then)
        backbone.register_forward_hook(lambda m, args, out: None if m.training else evaluated.append(len(args[0])))
        train = DataLoader(dataset(16, 0), batch_size=4), DataLoader(dataset(8, 5), batch_size=2)
        d = two_heads(backbone, h1, h2, *train)
        history = ld.fit(
            d, epochs=1, strategy="ddp", eval_data=held_out(), metrics=METRICS, loggers=[Tracker(folder)], **QUIET
        )
        direct = ld.Trainer(strategy="ddp", **QUIET).evaluate(d, held_out_otherwise(), METRICS)
        evals = [r["values"] for r in history.records if r["split"] == "eval"]
        state = {f"{i}.{k}": v for i, m in enumerate((backbone, h1, h2)) for k, v in m.state_dict().items()}
        torch.save(
            {"evals": evals, "direct": direct, "state": state, "evaluated": sum(evaluated)}, f"{folder}/rank{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


def test_two_processes_evaluate_their_shares_and_agree_with_one_process(tmp_path, one_thread):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[1]["evals"] == []  # only rank 0 logs ...
    assert (tmp_path / "tracker-0.jsonl").exists() and not (tmp_path / "tracker-1.jsonl").exists()
    assert ranks[0]["direct"] == ranks[1]["direct"]  # ... but every process gets the values
    # Each held-out sample goes through the backbone once, in one process: 9 + 9, then 7 + 11.
    assert [r["evaluated"] for r in ranks] == [5 + 6 + 7 + 6, 4 + 3 + 0 + 5]

    backbone, h1, h2 = models()
    for i, m in enumerate((backbone, h1, h2)):
        m.load_state_dict({k[2:]: v for k, v in ranks[0]["state"].items() if k.startswith(f"{i}.")})
    d = two_heads(backbone, h1, h2, *held_out().values())
    trainer = ld.Trainer(strategy="single", **QUIET)
    for got, data in ((ranks[0]["evals"][0], held_out()), (ranks[0]["direct"], held_out_otherwise())):
        expected = trainer.evaluate(d, data, METRICS)
        assert set(got) == set(expected) and len(expected) == 6
        for name, value in expected.items():
            assert math.isclose(got[name], value, rel_tol=1e-6, abs_tol=1e-6), (name, got[name], value)
