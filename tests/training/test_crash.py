"""A run SIGKILLed at random moments (checkpoint writes among them) resumes to the unbroken run, bit for bit.

The machinery is ``bench/crash.py`` (which runs 20 trials); here, three short ones.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "crash.py"


@pytest.fixture(scope="module")
def crash():
    spec = importlib.util.spec_from_file_location("ld_bench_crash", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")
def test_a_run_killed_at_random_moments_and_resumed_ends_bit_for_bit_as_an_unbroken_one(crash, tmp_path):
    exact, reports = crash.trials(3, kills=3, seed=11, root=tmp_path, epochs=2, echo=lambda line: None)
    assert [r["differences"] for r in reports] == [[], [], []]
    assert exact == 3
    assert sum(r["kills"] for r in reports) >= 3  # half the kills wait for a checkpoint write
    assert sum(r["during a checkpoint write"] for r in reports) >= 1


def test_what_differs_is_named(crash, tmp_path):
    """The comparison can fail: a run with another seed differs in weights, state and logs."""
    import torch

    import learning_diagrams as ld

    for name, seed in (("whole", 3), ("other", 4)):
        folder = tmp_path / name
        torch.manual_seed(0)
        ld.fit(
            crash._regime(1),
            seed=seed,
            checkpoint_dir=folder / "ckpt",
            log_dir=folder / "logs",
            progress=False,
            plot=False,
        )
    assert crash.differences(tmp_path / "whole", tmp_path / "other") == [
        "weights",
        "state (optimisers, schedulers, RNG, data order)",
        "log.jsonl",
        "log.csv",
    ]
