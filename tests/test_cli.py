"""The command line: pairs, draw and train on files written in tmp_path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from learning_diagrams.io import drawing as draw_module
from learning_diagrams.cli import main

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot program is not installed (apt-get install graphviz, brew install graphviz, "
    "or conda install -c conda-forge graphviz)",
)

DISTILLATION = """\
spaces:
  N: {data: train_ds}
  X: {}
  L: {}
  Y: {loss: cross_entropy}
  G: {loss: kl_div(T=2.0)}
maps:
  x: {src: N, tgt: X, fn: images}
  y: {src: N, tgt: Y, fn: labels}
  teacher: {src: X, tgt: L, trainable: false}
  student: {src: X, tgt: L}
  hard: {src: L, tgt: Y, fn: identity}
  soft: {src: L, tgt: G, fn: identity}
relations:
  - [x·student·hard, y, 0.75]
  - [x·student·soft, x·teacher·soft, 0.25]
"""

PAIRS = ["x·student·hard ≤ y  (at Y, weight 0.75)", "x·student·soft ≤ x·teacher·soft  (at G, weight 0.25)"]

TINY = """\
spaces:
  N: {data: train}
  X: {}
  Y: {loss: mse}
maps:
  x: {src: N, tgt: X, fn: first}
  y: {src: N, tgt: Y, fn: second}
  f: {src: X, tgt: Y, fn: model}
relations:
  - [x·f, y]
"""

ENV_MODULE = """\
import torch

def make_env():
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    return {"train": batches, "first": lambda b: b[0], "second": lambda b: b[1],
            "model": torch.nn.Linear(4, 1)}

ENV = {"train_ds": [0], "images": abs, "labels": abs, "identity": abs, "teacher": abs, "student": abs}
"""


@pytest.fixture
def distillation_file(tmp_path):
    path = tmp_path / "distil.yaml"
    path.write_text(DISTILLATION, encoding="utf-8")
    return path


@pytest.fixture
def env_module(tmp_path, request, monkeypatch):
    """A module of tmp_path that returns the tiny diagram's env; its name is unique to the test."""
    name = f"cli_env_{request.node.name.replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{name}.py").write_text(ENV_MODULE, encoding="utf-8")
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def write_config(tmp_path, env_name, **train):
    (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
    options = {"epochs": 3, "lr": 0.05, "progress": False, "device": "cpu", **train}
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"diagram": "tiny.yaml", "env": f"{env_name}:make_env", "train": options}))
    return config


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- pairs ---------------------------------------------------------------------------


def test_pairs_lists_the_compiled_pairs_without_an_env(capsys, distillation_file):
    status, out, err = run(capsys, "pairs", distillation_file)
    assert status == 0
    assert out.splitlines() == PAIRS
    assert err == ""


def test_pairs_with_an_env(capsys, distillation_file, env_module, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(tmp_path))
    status, out, _ = run(capsys, "pairs", distillation_file, "--env", f"{env_module}:ENV")
    assert (status, out.splitlines()) == (0, PAIRS)
    status, out, err = run(capsys, "pairs", distillation_file, "--env", f"{env_module}:make_env")
    assert status == 2 and out == ""
    assert err.startswith("error: ") and "'train_ds'" in err and len(err.splitlines()) == 1


def test_pairs_of_a_diagram_that_does_not_compile_exits_2_with_the_reason(capsys, tmp_path):
    path = tmp_path / "unrelated.yaml"
    path.write_text(DISTILLATION.split("relations:")[0], encoding="utf-8")  # no orientation at all
    status, out, err = run(capsys, "pairs", path)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and "orientation" in err and "Traceback" not in err


def test_a_loss_from_the_env_is_read_as_asymmetric_and_said_so(capsys, tmp_path):
    path = tmp_path / "own_loss.yaml"
    path.write_text(TINY.replace("loss: mse", "loss: my_loss"), encoding="utf-8")
    status, out, err = run(capsys, "pairs", path)
    assert (status, out) == (0, "x·f ≤ y  (at Y, weight 1)\n")
    assert "my_loss" in err and "asymmetric" in err


def test_errors_are_one_line_with_status_2_for_bad_input_and_1_for_the_system(capsys, tmp_path):
    status, _, err = run(capsys, "pairs", tmp_path / "missing.yaml")  # an OSError
    assert status == 1 and err.startswith("error: ") and "missing.yaml" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("spaces: {N: {data: d}}\nmaps:\n  f: {src: N, tgt: Nowhere}\n", encoding="utf-8")
    status, _, err = run(capsys, "pairs", bad)
    assert status == 2 and "Nowhere" in err and "Traceback" not in err
    status, _, err = run(capsys, "pairs", bad, "--env", "no_such_module_xyz:env")
    assert status == 2 and "no_such_module_xyz" in err


# -- draw ----------------------------------------------------------------------------


@needs_dot
def test_draw_writes_an_svg_naming_everything(capsys, distillation_file, tmp_path):
    out_file = tmp_path / "out" / "kd.svg"
    out_file.parent.mkdir()
    status, out, _ = run(capsys, "draw", distillation_file, "-o", out_file, "--title", "distillation")
    assert status == 0 and out.strip() == str(out_file)
    texts = [t.text for t in ET.parse(out_file).getroot().iter("{http://www.w3.org/2000/svg}text") if t.text]
    for name in ("N", "X", "L", "Y", "G", "x", "y", "teacher", "student", "hard", "soft", "distillation"):
        assert any(t == name or t.startswith(f"{name}:") for t in texts), name
    assert "x·student·soft ≤ x·teacher·soft" in texts
    status, out, _ = run(capsys, "draw", distillation_file)  # default: FILE with .svg
    assert status == 0 and (tmp_path / "distil.svg").exists()
    status, out, _ = run(capsys, "draw", distillation_file, "-o", "-")
    assert status == 0 and out.startswith("<?xml") and "</svg>" in out


def test_draw_dot_and_no_pairs(capsys, distillation_file, tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)  # .dot needs no Graphviz
    status, _, _ = run(capsys, "draw", distillation_file, "-o", tmp_path / "kd.dot")
    assert status == 0 and 'color="red:blue"' in (tmp_path / "kd.dot").read_text(encoding="utf-8")
    status, _, _ = run(capsys, "draw", distillation_file, "-o", tmp_path / "plain.dot", "--no-pairs")
    plain = (tmp_path / "plain.dot").read_text(encoding="utf-8")
    assert status == 0 and "red" not in plain and "student" in plain


def test_draw_without_dot_says_how_to_install_it(capsys, distillation_file, tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    status, out, err = run(capsys, "draw", distillation_file, "-o", tmp_path / "kd.png")
    assert status == 2 and out == ""
    assert err.startswith("error: ") and "apt-get install graphviz" in err and "brew install graphviz" in err
    assert not (tmp_path / "kd.png").exists()


def test_draw_a_diagram_that_does_not_compile(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    path = tmp_path / "unrelated.yaml"
    path.write_text(DISTILLATION.split("relations:")[0], encoding="utf-8")
    status, _, err = run(capsys, "draw", path, "-o", tmp_path / "u.dot")
    assert status == 0 and "does not compile" in err
    assert "OrientationError" in (tmp_path / "u.dot").read_text(encoding="utf-8")


# -- help ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["pairs", "draw", "train", "plot", "schema"])
def test_each_subcommand_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: learning-diagrams {command}")


def test_top_level_help_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and all(c in out for c in ("pairs", "draw", "train", "schema"))
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2 and "usage:" in capsys.readouterr().err


def test_python_dash_m(distillation_file):
    done = subprocess.run(
        [sys.executable, "-m", "learning_diagrams", "pairs", str(distillation_file)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == PAIRS


# -- schema --------------------------------------------------------------------------


def test_schema_prints_the_acset_schema_of_json_diagram_files(capsys):
    from learning_diagrams.io import schema_text

    done = subprocess.run(
        [sys.executable, "-m", "learning_diagrams", "schema"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert schema == json.loads(schema_text())
    assert [ob["name"] for ob in schema["Ob"]] == ["V", "E", "Path", "Step", "R", "Diagram"]
    assert {"name": "src", "dom": "E", "codom": "V", "title": "Source of an edge"} in schema["Hom"]


def test_a_catlab_graph_file_is_drawn_and_its_pairs_explained(capsys, tmp_path):
    fixture = Path(__file__).parent / "io" / "fixtures" / "catlab" / "catlab-0.14.12-velabeled-graph.json"
    assert main(["draw", str(fixture), "-o", str(tmp_path / "g.dot"), "--no-pairs"]) == 0
    dot = (tmp_path / "g.dot").read_text(encoding="utf-8")
    assert all(name in dot for name in ("a", "b", "c", "E1", "E2"))
    assert main(["pairs", str(fixture)]) == 2  # a skeleton has no data: nothing compiles, and it says why
    assert "no vertex carries data" in capsys.readouterr().err


# -- train ---------------------------------------------------------------------------


def test_train_runs_a_config_and_prints_the_summary(capsys, tmp_path, env_module, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    config = write_config(tmp_path, env_module, eval_data={"N": "train"})
    logs = tmp_path / "logs"
    status, out, err = run(capsys, "train", config, "--epochs", "1", "--log-dir", logs)
    assert status == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["stage", "split", "epoch", "total"] and "x·f" in header
    assert [row.split()[1:3] for row in rows] == [["train", "0"], ["eval", "0"]]  # one epoch, not the config's 3
    assert (logs / "log.csv").exists() and (logs / "log.jsonl").exists()


def test_train_resumes_from_a_checkpoint(capsys, tmp_path, env_module):
    # no syspath_prepend: the config's folder is on sys.path while its env module is imported
    before = list(sys.path)
    config = write_config(tmp_path, env_module, log_dir="logs", checkpoint_dir="checkpoints")
    status, out, err = run(capsys, "train", config, "--epochs", "1")
    assert status == 0, err
    assert sys.path == before
    assert (tmp_path / "logs" / "log.csv").exists()  # relative to the config's folder
    assert any((tmp_path / "checkpoints").iterdir())
    status, out, err = run(capsys, "train", config, "--epochs", "2", "--resume", tmp_path / "checkpoints")
    assert status == 0, err
    assert out.splitlines()[1].split()[1:3] == ["train", "1"]  # epochs count from 0


@pytest.mark.parametrize(
    ("change", "message", "code"),
    [
        ({"extra": 1}, "unknown key(s) 'extra'", 2),
        ({"train": {"epoch": 1}}, "unknown train option(s) 'epoch'", 2),
        ({"env": "nowhere_module_xyz:make_env"}, "no module named 'nowhere_module_xyz'", 2),
        ({"env": "just_a_module"}, "is not MODULE:ATTR", 2),
        ({"env": None}, "'env' must name the function", 2),
        ({"train": {"optimizer": "Adamm"}}, "is not a torch.optim optimiser", 2),
        ({"train": {"eval_data": {"N": "test"}}}, "names 'test', which the env does not have", 2),
        ({"diagram": "absent.yaml"}, "absent.yaml", 1),  # an OSError: the file system, not the input
    ],
    ids=["extra", "option", "module", "attr", "env", "optimizer", "eval_data", "diagram"],  # no '.': module names
)
def test_train_config_errors(capsys, tmp_path, env_module, change, message, code):
    config = write_config(tmp_path, env_module)
    data = json.loads(config.read_text())
    data.update(change)
    config.write_text(json.dumps(data))
    status, out, err = run(capsys, "train", config)
    assert status == code and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("epochs", "three", "train.epochs is 'three'; it takes an integer"),
        ("lr", "fast", "train.lr is 'fast'; it takes a number"),
        ("lr", -1, "refuses train.lr = -1"),
        ("seed", "a", "train.seed is 'a'; it takes an integer"),
        ("clip_grad_norm", "x", "train.clip_grad_norm is 'x'; it takes a number or null"),
        ("progress", "no", "train.progress is 'no'; it takes true or false"),
        ("log_dir", 3, "train.log_dir is 3"),
        ("compile", 3, "train.compile is 3"),
        ("device", "nope", "train.device 'nope' is not a device"),
        ("optimizer_kwargs", 3, "train.optimizer_kwargs is 3; it takes a mapping"),
        ("optimizer_kwargs", {"betas": 3}, "with train.optimizer_kwargs = {'betas': 3}: TypeError"),
        ("optimizer_kwargs", {"nope": 3}, "unexpected keyword argument 'nope'"),
        ("lrs", {"f": "x"}, "train.lrs is {'f': 'x'}; it takes a mapping (of names to a number) or null"),
        ("lrs", {"f": -1}, "refuses train.lrs.f = -1"),
        ("eval_data", 3, "train.eval_data is 3; it takes a mapping"),
        ("metrics", [1], "train.metrics is [1]; it takes a mapping"),
        ("scheduler", "torch.optim.lr_scheduler:StepLR", "train.scheduler fails on an optimiser: TypeError"),
        ("accumulate", 0, "accumulate must be"),  # the Trainer's own check, reported the same way
    ],
)
def test_a_bad_train_value_is_one_error_line_naming_it_with_status_2(
    capsys, tmp_path, env_module, option, value, message
):
    config = write_config(tmp_path, env_module, **{option: value})
    status, out, err = run(capsys, "train", config)
    assert (status, out) == (2, ""), err
    assert err.startswith("error: ") and message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_config_with_yaml_aliases_or_deep_nesting_is_refused_as_data(capsys, tmp_path, env_module):
    write_config(tmp_path, env_module)
    config = tmp_path / "train.yaml"
    config.write_text(f"diagram: tiny.yaml\nenv: {env_module}:make_env\ntrain: {{lr: &r 0.1, epochs: *r}}\n")
    status, _, err = run(capsys, "train", config)
    assert status == 2 and "anchors and aliases are not read" in err and "Traceback" not in err
    config.write_text(f"diagram: tiny.yaml\nenv: {env_module}:make_env\ntrain: {{lr: {'[' * 500}{']' * 500}}}\n")
    status, _, err = run(capsys, "train", config)
    assert status == 2 and "nested more than 64 levels" in err


def test_train_reads_yaml_configs(capsys, tmp_path, env_module):
    write_config(tmp_path, env_module)
    config = tmp_path / "train.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        diagram: tiny.yaml
        env: {env_module}:make_env
        train:
          epochs: 1
          optimizer: SGD
          lr: 0.01
          progress: false
          log_dir: false
          device: cpu
        """),
        encoding="utf-8",
    )
    status, out, err = run(capsys, "train", config)
    assert status == 0, err
    assert out.splitlines()[1].split()[:3] == ["0", "train", "0"]


def test_plot_redraws_the_losses_of_runs_from_their_logs(capsys, tmp_path):
    import learning_diagrams as ld

    runs = []
    for name in ("a", "b"):
        history = ld.History()
        for step in (1, 2, 3):
            history.log({"stage": 0, "epoch": 0, "step": step, "split": "train", "values": {"total": 1.0 / step}})
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in history.records), encoding="utf-8"
        )
        runs.append(tmp_path / name)
    assert main(["plot", str(runs[0]), str(runs[1] / "log.jsonl")]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(run / "losses.png") for run in runs]
    assert all((run / "losses.png").read_bytes().startswith(b"\x89PNG") for run in runs)
    assert main(["plot", str(runs[0]), "-o", str(tmp_path / "one.png"), "--stages", "teacher"]) == 0
    assert (tmp_path / "one.png").is_file()


def test_plot_refuses_a_missing_log_before_writing_any(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").write_text(
        '{"stage": 0, "epoch": 0, "step": 1, "split": "train", "values": {"total": 1.0}}\n', encoding="utf-8"
    )
    assert main(["plot", str(tmp_path / "run"), str(tmp_path / "nowhere")]) == 2
    assert "no log to plot at " + str(tmp_path / "nowhere") in capsys.readouterr().err
    assert not (tmp_path / "run" / "losses.png").exists()
    assert main(["plot", str(tmp_path / "run"), str(tmp_path / "run"), "-o", "x.png"]) == 2
