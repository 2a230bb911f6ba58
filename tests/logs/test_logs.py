"""Tests for learning_diagrams.logs: files, TensorBoard, progress, history, plots."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from learning_diagrams.core.errors import DiagramError, FileFormatError, OptionError, TypeMismatchError
from learning_diagrams.io.atomic import write_atomic
from learning_diagrams import logs
from learning_diagrams.logs import (
    CSV_COLUMNS,
    CSVLogger,
    History,
    JSONLinesLogger,
    Logger,
    Progress,
    TensorBoardLogger,
    default_loggers,
    make_record,
    short_name,
)

AWKWARD = 'x·a ≤ y, z "q"'
SOFT = "x·student·soft ≤ x·teacher·soft"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _records() -> list[dict]:
    """Two stages; stage 1 adds a term; eval records carry a metric."""
    out = []
    step = 0
    for stage, names in ((0, ["total", SOFT]), (1, ["total", SOFT, AWKWARD])):
        for epoch in range(2):
            for _ in range(3):
                step += 1
                values = {name: 10.0 * (stage + 1) + epoch + step / 100 + i for i, name in enumerate(names)}
                out.append(make_record(stage, epoch, step, "train", values))
            out.append(make_record(stage, epoch, step, "eval", {"total": 1.0 / step, "accuracy[Y]": 0.1 * step}))
    return out


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _only_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- records


def test_make_record_converts_values_and_keeps_order() -> None:
    torch = pytest.importorskip("torch")
    r = make_record(1, 2, 3, "train", {"total": torch.tensor(0.5), AWKWARD: 2})
    assert r == {"stage": 1, "epoch": 2, "step": 3, "split": "train", "values": {"total": 0.5, AWKWARD: 2.0}}
    assert list(r["values"]) == ["total", AWKWARD]
    assert all(type(v) is float for v in r["values"].values())


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"stage": 0, "epoch": 0, "step": 0, "split": "test", "values": {}}, ValueError),
        ({"stage": 0, "epoch": 0, "step": 0, "split": "train"}, ValueError),
        ({"stage": 0, "epoch": 0, "step": 0, "split": "train", "values": {}, "lr": 0.1}, ValueError),
        ({"stage": 0.5, "epoch": 0, "step": 0, "split": "train", "values": {}}, TypeError),
        ({"stage": True, "epoch": 0, "step": 0, "split": "train", "values": {}}, TypeError),
        ({"stage": 0, "epoch": 0, "step": 0, "split": "train", "values": {1: 0.0}}, TypeError),
        ({"stage": 0, "epoch": 0, "step": 0, "split": "train", "values": {"": 0.0}}, ValueError),
        ({"stage": 0, "epoch": 0, "step": 0, "split": "train", "values": {"a": "x"}}, TypeError),
        ({"stage": 0, "epoch": 0, "step": 0, "split": "train", "values": [("a", 1.0)]}, TypeError),
    ],
)
def test_bad_records_are_refused(record: dict, error: type[Exception], tmp_path: Path) -> None:
    with pytest.raises(error) as refused:
        History().log(record)
    assert isinstance(refused.value, DiagramError)  # the library's error, and the built-in
    with CSVLogger(tmp_path / "log.csv") as logger, pytest.raises(error):
        logger.log(record)
    assert _csv_rows(tmp_path / "log.csv") == [list(CSV_COLUMNS)]


def test_logger_base_is_a_context_manager() -> None:
    class Collect(Logger):
        def __init__(self) -> None:
            self.seen: list = []
            self.closed = False

        def log(self, record) -> None:
            self.seen.append(record)

        def close(self) -> None:
            self.closed = True

    with Collect() as logger:
        logger.log({"x": 1})
    assert logger.seen == [{"x": 1}] and logger.closed
    with pytest.raises(NotImplementedError):
        Logger().log({})


# --------------------------------------------------------------------------- CSV


def test_csv_round_trip_with_awkward_names(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "log.csv"
    values = {"total": 0.1, AWKWARD: 1 / 3, SOFT: math.inf, "nan,name\n?": math.nan}
    with CSVLogger(path) as logger:
        logger.log(make_record(2, 1, 17, "train", values))
        logger.log(make_record(2, 1, 17, "eval", {"accuracy[Y]": 0.75}))
    rows = _csv_rows(path)
    assert rows[0] == list(CSV_COLUMNS)
    body = [(int(s), int(e), int(t), sp, name, float(v)) for s, e, t, sp, name, v in rows[1:]]
    expected = [(2, 1, 17, "train", n, v) for n, v in values.items()] + [(2, 1, 17, "eval", "accuracy[Y]", 0.75)]
    assert len(body) == len(expected)
    for got, want in zip(body, expected):
        assert got[:5] == want[:5]
        assert got[5] == want[5] or (math.isnan(got[5]) and math.isnan(want[5]))
    assert body[1][5] == 1 / 3  # full precision
    assert "≤" in path.read_text(encoding="utf-8")


def test_csv_flushes_each_record(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    try:
        logger.log(make_record(0, 0, 1, "train", {"total": 1.0}))
        assert _csv_rows(path)[1:] == [["0", "0", "1", "train", "total", "1.0"]]
    finally:
        logger.close()
    logger.close()  # twice is harmless


def test_csv_append_does_not_repeat_the_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    with CSVLogger(path) as logger:
        logger.log(make_record(0, 0, 1, "train", {"total": 1.0, AWKWARD: 2.0}))
    with CSVLogger(path, append=True) as logger:
        logger.log(make_record(0, 0, 2, "train", {"total": 0.5}))
    rows = _csv_rows(path)
    assert rows.count(list(CSV_COLUMNS)) == 1 and rows[0] == list(CSV_COLUMNS)
    assert [r[2] for r in rows[1:]] == ["1", "1", "2"]
    # without append the file starts afresh
    with CSVLogger(path) as logger:
        logger.log(make_record(0, 0, 3, "train", {"total": 0.25}))
    assert _csv_rows(path) == [list(CSV_COLUMNS), ["0", "0", "3", "train", "total", "0.25"]]


def test_csv_append_to_missing_or_empty_file_writes_the_header(tmp_path: Path) -> None:
    for path in (tmp_path / "new.csv", tmp_path / "empty.csv"):
        if path.name == "empty.csv":
            path.write_bytes(b"")
        with CSVLogger(path, append=True) as logger:
            logger.log(make_record(0, 0, 1, "train", {"total": 1.0}))
        assert _csv_rows(path) == [list(CSV_COLUMNS), ["0", "0", "1", "train", "total", "1.0"]]


def test_csv_append_drops_a_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    with CSVLogger(path) as logger:
        logger.log(make_record(0, 0, 1, "train", {"total": 1.0}))
    with open(path, "a", encoding="utf-8") as f:
        f.write("0,0,2,train,tot")  # the crash
    with CSVLogger(path, append=True) as logger:
        logger.log(make_record(0, 0, 2, "train", {"total": 0.5}))
    assert _csv_rows(path) == [
        list(CSV_COLUMNS),
        ["0", "0", "1", "train", "total", "1.0"],
        ["0", "0", "2", "train", "total", "0.5"],
    ]


def test_csv_append_refuses_a_foreign_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="header"):
        CSVLogger(path, append=True)
    assert path.read_text(encoding="utf-8") == "a,b\n1,2\n"


def test_append_keeps_only_the_records_a_checkpoint_had_logged(tmp_path: Path) -> None:
    """keep=n: the first n records survive, each with all of its rows; n past the end keeps all."""
    records = _records()[:4]  # steps 1, 2, 3 (two values each), then step 3's eval (two values)
    records[1]["values"]['a\nname, "quoted"'] = records[1]["values"].pop(SOFT)  # a CSV row of two lines
    for keep, steps in (
        (0, []),
        (2, ["1", "1", "2", "2"]),
        (3, ["1", "1", "2", "2", "3", "3"]),
        (9, ["1", "1", "2", "2", "3", "3", "3", "3"]),
    ):
        csv_path, jsonl_path = tmp_path / f"{keep}.csv", tmp_path / f"{keep}.jsonl"
        for cls, path in ((CSVLogger, csv_path), (JSONLinesLogger, jsonl_path)):
            with cls(path) as logger:
                for record in records:
                    logger.log(record)
            cls(path, append=True, keep=keep).close()
        rows = _csv_rows(csv_path)
        assert rows[0] == list(CSV_COLUMNS) and [r[2] for r in rows[1:]] == steps
        assert History.from_jsonl(jsonl_path).records == tuple(records[:keep])


# --------------------------------------------------------------------------- JSON lines


def test_jsonl_round_trip_into_history(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "log.jsonl"
    records = _records()
    records[0]["values"]["nan"] = math.nan
    with JSONLinesLogger(path) as logger:
        for record in records:
            logger.log(record)
    text = path.read_text(encoding="utf-8")
    assert "≤" in text and "\\u" not in text  # ensure_ascii=False
    assert len(text.splitlines()) == len(records)
    history = History.from_jsonl(path)
    assert len(history) == len(records)
    got = history.records
    assert math.isnan(got[0]["values"].pop("nan")) and math.isnan(records[0]["values"].pop("nan"))
    assert list(got) == records
    assert [list(r["values"]) for r in got] == [list(r["values"]) for r in records]


def test_jsonl_flushes_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    records = _records()
    logger = JSONLinesLogger(path)
    logger.log(records[0])
    assert json.loads(path.read_text(encoding="utf-8")) == records[0]
    logger.close()
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"stage": 0, "ep')  # a crash mid-line
    assert History.from_jsonl(path).records == (records[0],)
    with JSONLinesLogger(path, append=True) as logger:
        logger.log(records[1])
    assert History.from_jsonl(path).records == (records[0], records[1])
    with JSONLinesLogger(path) as logger:
        logger.log(records[2])
    assert History.from_jsonl(path).records == (records[2],)


def test_from_jsonl_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    good = json.dumps(_records()[0])
    path.write_text(f"{good}\nnot json\n{good}\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"log\.jsonl:2"):
        History.from_jsonl(path)
    path.write_text(f'{good}\n\n{{"stage": 0}}\n', encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"log\.jsonl:3"):
        History.from_jsonl(path)


# --------------------------------------------------------------------------- TensorBoard


def test_tensorboard_logger_writes_readable_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    log_dir = tmp_path / "tb"
    with TensorBoardLogger(log_dir) as logger:
        logger.log(make_record(0, 0, 1, "train", {"total": 2.0, SOFT: 1.5}))
        logger.log(make_record(0, 0, 2, "train", {"total": 1.0, SOFT: 0.5}))
        logger.log(make_record(0, 0, 2, "eval", {"accuracy[Y]": 0.9}))
    events = list(log_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    assert set(accumulator.Tags()["scalars"]) == {"train/total", f"train/{SOFT}", "eval/accuracy[Y]"}
    assert [(e.step, e.value) for e in accumulator.Scalars(f"train/{SOFT}")] == [(1, 1.5), (2, 0.5)]
    assert [(e.step, pytest.approx(e.value)) for e in accumulator.Scalars("eval/accuracy[Y]")] == [(2, 0.9)]


def test_tensorboard_logger_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


def _kinds(loggers: list[Logger]) -> list[type]:
    return [type(logger) for logger in loggers]


def test_default_loggers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    loggers = default_loggers(run, tensorboard=False)
    for logger in loggers:
        logger.log(make_record(0, 0, 1, "train", {"total": 1.0}))
        logger.close()
    assert _kinds(loggers) == [CSVLogger, JSONLinesLogger]
    assert _only_files(run) == ["log.csv", "log.jsonl"]

    loggers = default_loggers(run, append=True)  # available, so included
    for logger in loggers:
        logger.log(make_record(0, 0, 2, "train", {"total": 0.5}))
        logger.close()
    assert _kinds(loggers) == [CSVLogger, JSONLinesLogger, TensorBoardLogger]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(_csv_rows(run / "log.csv")) == 3 and len(History.from_jsonl(run / "log.jsonl")) == 2

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name == "tensorboard" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    loggers = default_loggers(tmp_path / "absent")
    for logger in loggers:
        logger.close()
    assert _kinds(loggers) == [CSVLogger, JSONLinesLogger]
    assert _only_files(tmp_path / "absent") == ["log.csv", "log.jsonl"]

    loggers = default_loggers(tmp_path / "asked", tensorboard=True)  # asked for: find_spec is not consulted
    for logger in loggers:
        logger.close()
    assert _kinds(loggers) == [CSVLogger, JSONLinesLogger, TensorBoardLogger]


def test_default_loggers_tensorboard_true_without_tensorboard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        default_loggers(tmp_path, tensorboard=True)


# --------------------------------------------------------------------------- progress


def test_short_name_rule() -> None:
    assert short_name("total") == "total"
    assert short_name("a" * 24) == "a" * 24
    name = "0123456789abcdefghijklmnopqrstuvwxyz"
    assert short_name(name) == "0123456789a…pqrstuvwxyz"[:11] + "…" + name[-12:]
    assert len(short_name(name)) == 24
    assert short_name(SOFT) == "x·student·s…teacher·soft"
    assert short_name(name, width=3) == "0…z"
    with pytest.raises(OptionError, match="width must be at least 3"):
        short_name(name, width=2)


def test_progress_running_means() -> None:
    with Progress(total=4, disable=True) as bar:
        bar.update({SOFT: 1.0, "total": 3.0})
        bar.update({SOFT: 2.0, "total": 5.0})
        bar.update({SOFT: 6.0, "total": 7.0, "accuracy[Y]": 0.5})
    assert bar.n == 3
    assert bar.means == {"total": 5.0, SOFT: 3.0, "accuracy[Y]": 0.5}
    assert list(bar.means) == ["total", SOFT, "accuracy[Y]"]
    assert bar.postfix() == {"total": "5", "x·student·s…teacher·soft": "3", "accuracy[Y]": "0.5"}


def test_progress_draws_the_means_on_its_file() -> None:
    out = io.StringIO()
    with Progress(total=2, desc="stage 0", file=out) as bar:
        bar.update({"total": 1.0, SOFT: 0.25})
        bar.update({"total": 2.0, SOFT: 0.75})
    text = out.getvalue()
    assert "stage 0" in text and "2/2" in text
    assert "total=1.5" in text and "x·student·s…teacher·soft=0.5" in text

    quiet = io.StringIO()
    with Progress(total=1, file=quiet, disable=True) as bar:
        bar.update({"total": 1.0})
    assert quiet.getvalue() == ""


def test_progress_keys_are_distinct_and_stable() -> None:
    long_a = "x·student·s" + "A" * 20 + "teacher·soft"
    long_b = "x·student·s" + "B" * 20 + "teacher·soft"
    with Progress(disable=True) as bar:
        bar.update({long_a: 1.0, long_b: 2.0})
        keys = bar.keys
        bar.update({long_b: 4.0, "x·student·s…teacher·soft": 0.0})
    assert short_name(long_a) == short_name(long_b)
    assert keys[long_a] == "x·student·s…teacher·soft"
    assert keys[long_b].endswith("~2") and len(keys[long_b]) <= 24
    assert bar.keys[long_a] == keys[long_a] and bar.keys[long_b] == keys[long_b]
    assert bar.keys["x·student·s…teacher·soft"].endswith("~3")
    assert len(set(bar.keys.values())) == 3
    assert bar.means[long_b] == 3.0


# --------------------------------------------------------------------------- history


def test_history_queries() -> None:
    history = History(_records())
    assert len(history) == 16 and len(list(history)) == 16
    assert history.names() == ["total", SOFT, AWKWARD]
    assert history.names("eval") == ["total", "accuracy[Y]"]
    assert history.names(None) == ["total", SOFT, "accuracy[Y]", AWKWARD]  # first logged
    assert history.last("total") == 21.0 + 12 / 100
    assert history.last(SOFT) == 22.0 + 12 / 100
    assert history.last("accuracy[Y]", "eval") == pytest.approx(1.2)
    assert history.mean("total", "train", stage=0, epoch=0) == pytest.approx(10.02)
    assert history.mean("total", "train", stage=1) == pytest.approx((20.07 + 20.08 + 20.09 + 21.10 + 21.11 + 21.12) / 6)
    assert history.mean(AWKWARD) == pytest.approx(history.mean(AWKWARD, stage=1))
    assert history.mean("total", "eval", epoch=1) == pytest.approx((1 / 6 + 1 / 12) / 2)
    with pytest.raises(KeyError, match="accuracy"):
        history.last("accuracy[Y]")
    with pytest.raises(KeyError, match="stage 0"):
        history.mean(AWKWARD, stage=0)
    rows = history.rows()
    assert len(rows) == sum(len(r["values"]) for r in history.records)
    assert rows[0] == (0, 0, 1, "train", "total", 10.01)
    assert rows[-1] == (1, 1, 12, "eval", "accuracy[Y]", pytest.approx(1.2))


def test_history_is_append_only_and_a_logger() -> None:
    history = History()
    record = make_record(0, 0, 1, "train", {"total": 1.0})
    with history as logger:
        logger.log(record)
    history.append(make_record(0, 0, 2, "train", {"total": 2.0}))
    record["values"]["total"] = 99.0  # the history keeps its own copy
    assert isinstance(history.records, tuple)
    assert [r["values"]["total"] for r in history.records] == [1.0, 2.0]
    with pytest.raises((TypeError, AttributeError)):
        history.records.append(record)  # type: ignore[attr-defined]


def test_history_keeps_a_long_run_in_a_few_bytes_a_value() -> None:
    history = History()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for step in range(1, 20_001):
            history.log(make_record(0, step // 1000, step, "train", {"total": step / 3, SOFT: -step / 7}))
            if step % 500 == 0:
                history.log(make_record(0, step // 1000, step, "eval", {"total": 1.0, "accuracy[Y]": 0.5}))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used < 16 * 2 * 20_040  # under 16 bytes a value; a record kept as a dict takes about 700
    assert len(history) == 20_040
    assert history.records[-1] == make_record(0, 20, 20_000, "eval", {"total": 1.0, "accuracy[Y]": 0.5})
    assert history.last(SOFT) == -20_000 / 7 and history.last("accuracy[Y]", "eval") == 0.5
    assert history.mean("total", epoch=20) == 20_000 / 3
    assert history.names(None) == ["total", SOFT, "accuracy[Y]"]


def test_history_refuses_a_step_it_cannot_hold_and_keeps_the_rest() -> None:
    history = History([make_record(0, 0, 1, "train", {"total": 1.0})])
    with pytest.raises(OptionError, match="record step 9223372036854775808 is out of range"):
        history.log(make_record(0, 0, 2**63, "train", {"total": 2.0}))
    assert history.records == (make_record(0, 0, 1, "train", {"total": 1.0}),)


def test_history_summary() -> None:
    lines = History(_records()).summary().splitlines()
    assert lines[0].split()[:4] == ["stage", "split", "epoch", "total"]
    assert lines[0].index(SOFT) < lines[0].index("accuracy[Y]") < lines[0].index(AWKWARD)
    assert [line.split()[:3] for line in lines[1:]] == [
        ["0", "train", "1"],
        ["0", "eval", "1"],
        ["1", "train", "1"],
        ["1", "eval", "1"],
    ]
    # columns: total, SOFT, accuracy[Y], AWKWARD; the means of the last epoch only
    # (stage 0 train epoch 1 is steps 4..6: total 11.04, 11.05, 11.06)
    assert lines[1].split()[3:] == ["11.05", "12.05", "-", "-"]
    assert lines[2].split()[3:] == ["0.166667", "-", "0.6", "-"]
    assert lines[3].split()[3:] == ["21.11", "22.11", "-", "23.11"]
    assert lines[4].split()[3:] == ["0.0833333", "-", "1.2", "-"]
    end = lines[0].index("total") + len("total")  # numbers are right-aligned under their name
    assert all(line[end - 1] != " " and line[end] == " " for line in lines)
    assert History().summary() == "(no records)"


# --------------------------------------------------------------------------- plots and atomic writes


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pyplot_before = "matplotlib.pyplot" in sys.modules
    history = History(_records())
    with pytest.raises(FileNotFoundError, match="the folder .* does not exist"):
        history.plot(tmp_path / "plots" / "train.png")  # writers do not guess paths
    (tmp_path / "plots").mkdir()
    path = history.plot(tmp_path / "plots" / "train.png")
    assert path == tmp_path / "plots" / "train.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert _only_files(path.parent) == ["train.png"]
    Image = pytest.importorskip("PIL.Image")
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100
    eval_path = history.plot(tmp_path / "plots" / "eval.png", split="eval")
    assert eval_path.read_bytes().startswith(PNG_MAGIC)
    assert History().plot(tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)
    if not pyplot_before:
        assert "matplotlib.pyplot" not in sys.modules


def test_figure_layout() -> None:
    records = _records()
    records.append(make_record(1, 1, 15, "train", {"total": -1.0, SOFT: 1.0, AWKWARD: 1.0}))
    figure = History(records).figure()
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["stage 0", "stage 1"]
    assert figure.get_suptitle() == "train values by stage"
    assert [ax.get_yscale() for ax in axes] == ["log", "linear"]  # stage 1 has a value <= 0
    assert [ax.get_xlabel() for ax in axes] == ["step", "step"]
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes]
    assert labels == [["total", SOFT], ["total", SOFT, AWKWARD]]
    colours = [{line.get_label(): line.get_color() for line in ax.get_lines()} for ax in axes]
    assert colours[0][SOFT] == colours[1][SOFT] != colours[1][AWKWARD]
    assert list(axes[0].get_lines()[0].get_xdata()) == [1, 2, 3, 4, 5, 6]
    empty = History().figure("eval")
    assert [t.get_text() for t in empty.axes[0].texts] == ["no eval records"]
    named = History(records)
    assert [ax.get_title() for ax in named.figure(stages=["teacher", "student"]).axes] == ["teacher", "student"]
    assert [ax.get_title() for ax in named.figure(stages={1: "student"}).axes] == ["stage 0", "student"]
    with pytest.raises(TypeMismatchError, match="not the string 'teacher'"):
        named.figure(stages="teacher")


def test_plot_fits_a_legend_of_many_terms(tmp_path: Path) -> None:
    """72 glued squares' terms: the legend wraps into columns and the figure grows to hold it,
    so constrained layout applies (its warning is an error under the test settings)."""
    names = ["total"] + [f"x_{i}·m·h_{i} ≤ y_{i}" for i in range(72)]
    records = [
        make_record(0, 0, step, "train", {n: 1.0 + step + i for i, n in enumerate(names)}) for step in range(1, 4)
    ]
    figure = History(records).figure()
    legend = figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == names
    assert legend._ncols > 1
    assert figure.get_size_inches()[1] > 5.6
    figure.canvas.draw()
    box, page = legend.get_window_extent(), figure.bbox
    pad = 0.1 * figure.dpi  # the legend's own border padding may reach past the edge
    assert page.x0 - pad <= box.x0 and box.x1 <= page.x1 + pad and page.y0 - pad <= box.y0  # nothing cut off
    assert History(records).plot(tmp_path / "many.png").read_bytes().startswith(PNG_MAGIC)


def test_interrupted_write_keeps_the_previous_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "file.bin", b"previous")
    png = History(_records()).plot(tmp_path / "train.png")
    old_png = png.read_bytes()

    def fail(src, dst):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="unplugged"):
        write_atomic(path, b"next")
    with pytest.raises(OSError, match="unplugged"):
        History(_records()[:3]).plot(png)
    monkeypatch.undo()
    assert path.read_bytes() == b"previous"
    assert png.read_bytes() == old_png
    assert _only_files(tmp_path) == ["file.bin", "train.png"]


def test_module_exports() -> None:
    for name in logs.__all__:
        assert hasattr(logs, name), name


def test_the_logs_work_without_torch(tmp_path: Path) -> None:
    # What a JAX run logs with: nothing here may import torch, TensorBoard's event files included.
    code = (
        "import sys; from learning_diagrams.logs import TensorBoardLogger, default_loggers, make_record; "
        f"loggers = default_loggers({str(tmp_path)!r}, tensorboard=True); "
        "[l.log(make_record(0, 0, 1, 'train', {'total': 1.0})) for l in loggers]; [l.close() for l in loggers]; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
