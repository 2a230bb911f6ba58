"""The trainer's loggers= option: Lightning's loggers (W&B, MLflow, ... through them) and our own."""

import csv
import math

import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from torch import nn

import learning_diagrams as ld
from learning_diagrams.logs import CSVLogger, History, TrackerLogger

QUIET = dict(progress=False, log_dir=False)
TERM = "x·f ≤ y"


def regression(n=12, batch=4, seed=0):
    """A linear map fitted to a linear target: one term, ``x·f ≤ y``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    batches = [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]
    torch.manual_seed(seed)
    return (
        ld.Diagram()
        .space("N", data=batches)
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", nn.Linear(3, 1))
        .relate("x·f", "y")
    ), batches


class Recorder:
    """Lightning's logger interface, recording each call."""

    def __init__(self):
        self.calls = []

    def log_hyperparams(self, params):
        self.calls.append(("log_hyperparams", params))

    def log_metrics(self, metrics, step):
        self.calls.append(("log_metrics", metrics, step))

    def save(self):
        self.calls.append(("save",))

    def finalize(self, status):
        self.calls.append(("finalize", status))


def test_a_lightning_csv_logger_gets_every_record_by_split_and_name_at_its_step(tmp_path):
    d, batches = regression()
    logger = LightningCSVLogger(tmp_path, name="run")
    history = ld.fit(d, epochs=2, lr=0.05, eval_data={"N": batches}, loggers=[logger], **QUIET)
    with open(tmp_path / "run" / "version_0" / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    logged = {
        (int(row["step"]), name, float(value))
        for row in rows
        for name, value in row.items()
        if "/" in name and value != ""
    }
    expected = {(r["step"], f"{r['split']}/{name}", v) for r in history.records for name, v in r["values"].items()}
    assert len(logged) == len(expected) == 2 * 3 * 2 + 2 * 2  # 6 train records of 2 values, 2 eval of 2
    for (step, name, value), (step_, name_, value_) in zip(sorted(logged), sorted(expected)):
        assert (step, name) == (step_, name_) and math.isclose(value, value_, rel_tol=1e-12)
    assert {int(row["epoch"]) for row in rows} == {0, 1} and {row["stage"] for row in rows} == {"0"}
    hparams = yaml.safe_load((tmp_path / "run" / "version_0" / "hparams.yaml").read_text(encoding="utf-8"))
    assert hparams["lr"] == 0.05 and hparams["epochs"] == 2 and hparams["log_dir"] is False
    assert "optimizer" not in hparams and "eval_data" not in hparams  # a class and data are no plain data


def test_a_tracker_gets_the_options_first_then_each_record_then_save_and_finalize():
    d, batches = regression()
    recorder = Recorder()
    history = ld.fit(d, epochs=1, loggers=[recorder], **QUIET)
    first, *metrics, save, finalize = recorder.calls
    assert first[0] == "log_hyperparams" and first[1]["policy"] == "max_size_cycle" and "loggers" not in first[1]
    assert [m[2] for m in metrics] == [r["step"] for r in history.records] == [1, 2, 3]
    values = history.records[0]["values"]
    assert metrics[0][1] == {"train/total": values["total"], f"train/{TERM}": values[TERM], "epoch": 0, "stage": 0}
    assert (save, finalize) == (("save",), ("finalize", "success"))


class Crash(BaseException):  # as KeyboardInterrupt: not wrapped as a MapError
    pass


def test_a_run_that_raises_finalises_its_trackers_as_failed():
    d, _ = regression()
    calls = 0

    def inputs(batch):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Crash
        return batch[0]

    d.maps["x"].fn = inputs
    recorder = Recorder()
    with pytest.raises(Crash):
        ld.fit(d, epochs=1, loggers=[recorder], **QUIET)
    assert [c[0] for c in recorder.calls] == ["log_hyperparams", "log_metrics", "save", "finalize"]
    assert recorder.calls[-1] == ("finalize", "failed")


def test_our_own_loggers_get_the_records_and_stay_open_for_their_owner(tmp_path):
    d, _ = regression()

    class Plain:  # no Logger subclass: a log(record) method is enough
        def __init__(self):
            self.records = []

        def log(self, record):
            self.records.append(record)

    mine, plain = History(), Plain()
    with CSVLogger(tmp_path / "mine.csv") as csv_logger:
        history = ld.fit(d, epochs=1, loggers=[mine, plain, csv_logger], **QUIET)
        csv_logger.log(history.records[-1])  # still open: fit does not close what it was given
    assert mine.records == history.records and plain.records == list(history.records)
    assert len((tmp_path / "mine.csv").read_text(encoding="utf-8").splitlines()) == 1 + 3 * 2 + 2


def test_a_logger_given_alone_is_taken_and_what_is_no_logger_is_refused_at_once():
    recorder = Recorder()
    assert ld.Trainer(loggers=recorder).loggers == (recorder,)
    with pytest.raises(TypeError, match=r"log_metrics\(metrics, step\).*got an object of type int"):
        ld.Trainer(loggers=[42])
    with pytest.raises(TypeError, match="takes a list of loggers, got an object of type int"):
        ld.Trainer(loggers=42)
    with pytest.raises(ld.errors.TypeMismatchError, match="has none"):
        TrackerLogger(History())
