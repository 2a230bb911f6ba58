import collections
import hashlib
import json
import os
import pickle
import random
import re
import struct

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from torch import nn

from learning_diagrams.core.errors import CheckpointError, ConflictError, DiagramError, NonFiniteError
from learning_diagrams.training import checkpoint as ckpt
from learning_diagrams.training import randomness
from learning_diagrams.training.checkpoint import latest_checkpoint, load_checkpoint, load_state, save_checkpoint
from learning_diagrams.training.randomness import rng_state, set_rng_state


class TwoEdges(nn.Module):
    """One model on two edges, as a compiled diagram holds it: the same tensors under two keys."""

    def __init__(self, width=3):
        super().__init__()
        shared = nn.Linear(width, width)
        self.maps = nn.ModuleDict({"f": shared, "g": shared, "h": nn.Sequential(nn.Linear(width, 2), nn.Dropout(0.5))})
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls += 1
        return self.maps["h"](self.maps["g"](self.maps["f"](x)))


def trained(seed=0, steps=2):
    """A module, its Adam optimiser and scheduler, after a few steps (so Adam has state)."""
    torch.manual_seed(seed)
    model = TwoEdges()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def full_state(opt, sched, step):
    return {
        "optimizers": [opt.state_dict()],
        "schedulers": [sched.state_dict()],
        "scaler": torch.amp.GradScaler("cpu").state_dict(),
        "rng": rng_state(),
        "step": step,
    }


def assert_same_tree(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    else:
        assert a == b


def assert_same_weights(m1, m2):
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert list(s1) == list(s2)
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k


def debris(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith((".tmp-", ".old-")))


# ---------------------------------------------------------------------------- round trip


def test_round_trip_restores_shared_weights_optimizer_scheduler_and_rng(tmp_path):
    model, opt, sched = trained(seed=0)
    state = full_state(opt, sched, step=2)
    path = save_checkpoint(tmp_path, module=model, state=state, step=2)
    assert path == tmp_path / "step-000000002"
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "state.pt"]
    assert (tmp_path / "latest").read_text() == "step-000000002\n"
    with safetensors.safe_open(str(path / "model.safetensors"), framework="pt") as f:
        stored = set(f.keys())
    assert len({"maps.f.weight", "maps.g.weight"} & stored) == 1  # the shared model is stored once

    fresh, fresh_opt, fresh_sched = trained(seed=1, steps=1)
    assert not torch.equal(fresh.maps["f"].weight, model.maps["f"].weight)
    loaded = load_checkpoint(tmp_path, module=fresh)
    assert_same_weights(fresh, model)
    assert fresh.maps["f"] is fresh.maps["g"]
    fresh_opt.load_state_dict(loaded["optimizers"][0])
    fresh_sched.load_state_dict(loaded["schedulers"][0])
    assert_same_tree(fresh_opt.state_dict(), opt.state_dict())
    assert fresh_sched.state_dict() == sched.state_dict()
    assert_same_tree(loaded, state)
    assert loaded["rng"]["numpy"]["keys"].dtype == torch.int64


def test_a_checkpoint_folder_or_the_directory_of_checkpoints_can_be_loaded(tmp_path):
    model, _, _ = trained()
    save_checkpoint(tmp_path, module=model, state={"step": 1}, step=1)
    save_checkpoint(tmp_path, module=model, state={"step": 2}, step=2)
    assert load_checkpoint(tmp_path / "step-000000001", module=TwoEdges())["step"] == 1
    assert load_checkpoint(tmp_path, module=TwoEdges())["step"] == 2


def run(model, opt, sched, steps):
    for _ in range(steps):
        x = torch.randn(4, 3) * (1 + np.random.rand()) + random.random()
        opt.zero_grad()
        model(x).pow(2).mean().backward()  # dropout draws from torch's generator
        opt.step()
        sched.step()


def test_a_resumed_run_repeats_the_uninterrupted_run_bit_for_bit(tmp_path):
    def start():
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        model = TwoEdges()
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    model, opt, sched = start()
    run(model, opt, sched, 6)

    first, first_opt, first_sched = start()
    run(first, first_opt, first_sched, 3)
    save_checkpoint(tmp_path, module=first, state=full_state(first_opt, first_sched, step=3), step=3)
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # a new process: other states, other init
    resumed = TwoEdges()
    resumed_opt = torch.optim.Adam(resumed.parameters(), lr=0.05)
    resumed_sched = torch.optim.lr_scheduler.StepLR(resumed_opt, step_size=2, gamma=0.5)
    state = load_checkpoint(tmp_path, module=resumed)
    resumed_opt.load_state_dict(state["optimizers"][0])
    resumed_sched.load_state_dict(state["schedulers"][0])
    set_rng_state(state["rng"])
    run(resumed, resumed_opt, resumed_sched, 3)

    assert_same_weights(resumed, model)
    assert_same_tree(resumed_opt.state_dict(), opt.state_dict())


# ---------------------------------------------------------------------------- crashes


class Crash(BaseException):
    """A kill: raised part-way through a save, not caught, no clean-up runs (like SIGKILL)."""


def _fail_in_torch_save(monkeypatch):
    def partial(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise Crash

    monkeypatch.setattr(torch, "save", partial)


def _fail_in_safetensors_write(monkeypatch):
    def partial(module, filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
        raise Crash

    monkeypatch.setattr(safetensors.torch, "save_model", partial)


def _fail_in_folder_rename(monkeypatch):
    real = os.rename

    def rename(src, dst, *args, **kwargs):
        if os.path.basename(src).startswith(".tmp-step-"):
            raise Crash
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)


def _fail_in_latest_write(monkeypatch):
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(dst) == "latest":
            raise Crash
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize(
    "fail, step_2_complete",
    [
        (_fail_in_torch_save, False),
        (_fail_in_safetensors_write, False),
        (_fail_in_folder_rename, False),
        (_fail_in_latest_write, True),
    ],
    ids=["torch.save", "safetensors", "rename", "latest"],
)
def test_a_save_interrupted_part_way_leaves_the_previous_checkpoint_loadable(
    tmp_path, monkeypatch, fail, step_2_complete
):
    model, opt, sched = trained(seed=0)
    state_1 = full_state(opt, sched, step=1)
    save_checkpoint(tmp_path, module=model, state=state_1, step=1)
    saved_1 = {k: v.clone() for k, v in model.state_dict().items()}

    later, later_opt, later_sched = trained(seed=5)
    with monkeypatch.context() as patch:
        fail(patch)
        with pytest.raises(Crash):
            save_checkpoint(tmp_path, module=later, state=full_state(later_opt, later_sched, step=2), step=2)

    assert debris(tmp_path), "a kill leaves its temporary files behind"
    assert (tmp_path / "step-000000002").is_dir() == step_2_complete
    # The commit point is `latest`: until it names step 2, step 1 is the checkpoint to resume from.
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000001"
    fresh = TwoEdges()
    loaded = load_checkpoint(tmp_path, module=fresh)
    assert_same_tree(loaded, state_1)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, saved_1[k]), k

    save_checkpoint(tmp_path, module=later, state={"step": 3}, step=3)
    assert debris(tmp_path) == []
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000003"
    assert load_checkpoint(tmp_path, module=TwoEdges()) == {"step": 3}


@pytest.mark.parametrize("damage", ["missing", "garbage", "escape", "incomplete"])
def test_without_a_usable_latest_file_the_newest_complete_folder_is_found(tmp_path, damage):
    model, _, _ = trained()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, module=model, state={"step": step}, step=step)
    latest = tmp_path / "latest"
    if damage == "missing":
        latest.unlink()
    elif damage == "garbage":
        latest.write_bytes(b"\xff\xfe not a name")
    elif damage == "escape":
        (tmp_path / "elsewhere").mkdir()
        latest.write_text("../elsewhere\n")
    else:  # latest names a folder that lost a file: fall back past it, to the newest complete one
        (tmp_path / "step-000000003" / "state.pt").unlink()
        assert latest_checkpoint(tmp_path) == tmp_path / "step-000000002"
        return
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000003"


def test_only_the_latest_update_failed_then_losing_latest_falls_back_to_the_complete_new_folder(tmp_path, monkeypatch):
    model, _, _ = trained()
    save_checkpoint(tmp_path, module=model, state={"step": 1}, step=1)
    with monkeypatch.context() as patch:
        _fail_in_latest_write(patch)
        with pytest.raises(Crash):
            save_checkpoint(tmp_path, module=model, state={"step": 2}, step=2)
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000001"
    (tmp_path / "latest").unlink()
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000002"
    assert load_checkpoint(tmp_path, module=TwoEdges()) == {"step": 2}


def test_saving_the_same_step_again_replaces_it(tmp_path):
    model, _, _ = trained(seed=0)
    other, _, _ = trained(seed=3)
    save_checkpoint(tmp_path, module=model, state={"v": 1}, step=4)
    save_checkpoint(tmp_path, module=other, state={"v": 2}, step=4)
    fresh = TwoEdges()
    assert load_checkpoint(tmp_path, module=fresh) == {"v": 2}
    assert_same_weights(fresh, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-000000004"]


def test_a_kill_between_the_two_renames_of_a_replacement_keeps_the_old_copy_in_use(tmp_path, monkeypatch):
    model, _, _ = trained(seed=0)
    save_checkpoint(tmp_path, module=model, state={"v": 1}, step=4)
    real = os.rename
    dead = []

    def rename(src, dst, *args, **kwargs):  # the new folder's rename is where the process dies
        if dead or os.path.basename(src).startswith(".tmp-step-"):
            dead.append(src)
            raise Crash
        return real(src, dst, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", rename)
        with pytest.raises(Crash):
            save_checkpoint(tmp_path, module=trained(seed=3)[0], state={"v": 2}, step=4)
    assert not (tmp_path / "step-000000004").exists()
    found = latest_checkpoint(tmp_path)
    assert found is not None and found.name.startswith(".old-step-000000004-")
    fresh = TwoEdges()
    assert load_checkpoint(tmp_path, module=fresh) == {"v": 1}
    assert_same_weights(fresh, model)

    save_checkpoint(tmp_path, module=model, state={"v": 5}, step=5)  # puts step 4 back first
    assert debris(tmp_path) == []
    assert load_checkpoint(tmp_path / "step-000000004", module=TwoEdges()) == {"v": 1}


def test_an_ordinary_error_during_a_save_removes_its_own_temporary_folder(tmp_path, monkeypatch):
    model, _, _ = trained()
    save_checkpoint(tmp_path, module=model, state={"v": 1}, step=1)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", disk_full)
        with pytest.raises(OSError, match="No space left"):
            save_checkpoint(tmp_path, module=model, state={"v": 1}, step=1)
    assert debris(tmp_path) == []
    assert load_checkpoint(tmp_path, module=TwoEdges()) == {"v": 1}


# ---------------------------------------------------------------------------- weights_only


_RAN = []


def _record(what):
    _RAN.append(what)
    return what


class Sneaky:
    """Unpickling this calls _record: what a malicious state.pt would do with os.system."""

    def __reduce__(self):
        return (_record, ("code from the file ran",))


def test_a_state_file_holding_an_arbitrary_object_is_refused_without_running_it(tmp_path):
    model, _, _ = trained()
    path = save_checkpoint(tmp_path, module=model, state={"v": 1}, step=1)
    torch.save({"v": Sneaky()}, path / "state.pt")  # crafted behind save_checkpoint's back
    fresh = TwoEdges()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    _RAN.clear()
    with pytest.raises(
        CheckpointError, match=r"state\.pt: holds more than plain data.*weights_only=True\) refused"
    ) as info:
        load_checkpoint(path, module=fresh)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*step-000000001: state\.pt: holds more"):
        load_checkpoint(tmp_path, module=fresh)  # the directory: its only checkpoint is refused
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_state(path)
    assert _RAN == []
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k]), "the module is untouched when the state is refused"


Pair = collections.namedtuple("Pair", "a b")


@pytest.mark.parametrize(
    "state, where",
    [
        ({"optimizers": [{"param_groups": [{"foo": object()}]}]}, "state['optimizers'][0]['param_groups'][0]['foo']"),
        ({"data": {"order": np.arange(3)}}, "state['data']['order']"),
        ({"rng": (1, Pair(1, 2))}, "state['rng'][1]"),
        ({"x": [1, {2, 3}]}, "state['x'][1]"),
        ({"f": len}, "state['f']"),
        ({"n": np.float32(1.0)}, "state['n']"),
        ({"d": {Pair(1, 2): 1}}, "a key of state['d']"),
    ],
)
def test_a_state_that_weights_only_would_refuse_is_refused_at_save_naming_its_key_path(tmp_path, state, where):
    with pytest.raises(TypeError, match=re.escape(where)):
        save_checkpoint(tmp_path, module=TwoEdges(), state=state, step=1)
    assert list(tmp_path.iterdir()) == []


def test_a_state_that_contains_itself_is_refused(tmp_path):
    loop = []
    loop.append(loop)
    with pytest.raises(TypeError, match=r"state\['loop'\]\[0\] contains itself"):
        save_checkpoint(tmp_path, module=TwoEdges(), state={"loop": loop}, step=1)


def test_every_kind_of_plain_data_the_check_allows_loads_with_weights_only(tmp_path):
    state = {
        "none": None,
        "numbers": [True, 3, 2.5, float("inf"), 1 + 2j],
        "text": ("s", b"b"),
        "tensors": [torch.arange(3), nn.Parameter(torch.ones(2)), torch.ones(2, requires_grad=True) * 2],
        "torch": [torch.Size([2, 3]), torch.float16, torch.device("cpu")],
        "ordered": collections.OrderedDict(a=1),
        "keys": {1: "int", (1, "t"): "tuple", None: "none"},
        "rng": rng_state(),
    }
    save_checkpoint(tmp_path, module=TwoEdges(), state=state, step=1)
    assert_same_tree(load_checkpoint(tmp_path, module=TwoEdges()), state)


# ---------------------------------------------------------------------------- RNG


def draws():
    return random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist()


def test_setting_the_saved_rng_state_repeats_the_next_draws():
    random.gauss(0, 1), np.random.randn()  # leave a cached gaussian in both
    state = rng_state()
    first = draws()
    set_rng_state(state)
    assert draws() == first
    assert draws() != first


def test_rng_state_survives_a_weights_only_save_and_load(tmp_path):
    np.random.randn()
    save_checkpoint(tmp_path, module=TwoEdges(), state={"rng": rng_state()}, step=1)
    first = draws()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    set_rng_state(load_checkpoint(tmp_path, module=TwoEdges())["rng"])
    assert draws() == first


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_states_are_saved_and_restored():  # pragma: no cover - GPU machines only
    state = rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    first = torch.rand(3, device="cuda")
    set_rng_state(state)
    assert torch.equal(torch.rand(3, device="cuda"), first)


# ---------------------------------------------------------------------------- retention


def test_keep_retains_the_newest_folders(tmp_path):
    model = TwoEdges()
    for step in range(1, 6):
        save_checkpoint(tmp_path, module=model, state={"step": step}, step=step, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-000000004", "step-000000005"]


def test_keep_none_retains_every_folder_and_ordering_is_by_number(tmp_path):
    model = TwoEdges()
    for step in (5, 999_999_999, 1_000_000_000):
        save_checkpoint(tmp_path, module=model, state={"step": step}, step=step, keep=None)
    save_checkpoint(tmp_path, module=model, state={"step": 7}, step=7, keep=None)
    assert len(list(tmp_path.glob("step-*"))) == 4
    (tmp_path / "latest").unlink()
    assert latest_checkpoint(tmp_path) == tmp_path / "step-1000000000"


def test_keep_never_deletes_the_folder_just_written(tmp_path):
    model = TwoEdges()
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, module=model, state={"step": step}, step=step, keep=3)
    save_checkpoint(tmp_path, module=model, state={"step": 15}, step=15, keep=1)  # resumed from an earlier one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-000000015"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000015"


@pytest.mark.parametrize("keep, step", [(0, 1), (-1, 1), (True, 1), (3, -1), (3, 1.0)])
def test_bad_keep_or_step_is_refused_before_writing(tmp_path, keep, step):
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path, module=TwoEdges(), state={}, step=step, keep=keep)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- loading errors


def test_missing_checkpoints_raise_file_not_found_naming_the_path(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "nowhere") is None
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        load_checkpoint(tmp_path / "nowhere", module=TwoEdges())
    with pytest.raises(FileNotFoundError, match=re.escape(f"no complete checkpoint in {str(tmp_path)!r}")):
        load_checkpoint(tmp_path, module=TwoEdges())
    path = save_checkpoint(tmp_path, module=TwoEdges(), state={}, step=1)
    (path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        load_checkpoint(path, module=TwoEdges())
    assert latest_checkpoint(tmp_path) is None


class Renamed(nn.Module):
    def __init__(self):
        super().__init__()
        self.maps = nn.ModuleDict({"f": nn.Linear(3, 3), "k": nn.Linear(3, 2)})


def test_weights_that_do_not_fit_give_one_error_naming_missing_and_unexpected_keys(tmp_path):
    save_checkpoint(tmp_path, module=TwoEdges(), state={}, step=1)
    module = Renamed()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(ConflictError) as info:
        load_checkpoint(tmp_path, module=module)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DiagramError)
    missing = message.split("missing keys")[1].split("\n")[0]
    unexpected = message.split("unexpected keys")[1].split("\n")[0]
    for key in ("maps.k.weight", "maps.k.bias"):
        assert key in missing
    for key in ("maps.h.0.weight", "maps.h.0.bias", "calls"):
        assert key in unexpected
    assert "maps.f.weight" not in missing + unexpected
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), "the module is untouched when the weights do not fit"


def test_a_module_that_no_longer_shares_the_model_misses_its_second_copy(tmp_path):
    save_checkpoint(tmp_path, module=TwoEdges(), state={}, step=1)
    unshared = TwoEdges()
    unshared.maps["g"] = nn.Linear(3, 3)
    with pytest.raises(
        ConflictError, match=r"missing keys \(in the module, not in the file\): maps\.\w\.bias, maps\.\w\.weight\n"
    ):
        load_checkpoint(tmp_path, module=unshared)


def test_shape_mismatches_are_named(tmp_path):
    save_checkpoint(tmp_path, module=TwoEdges(width=3), state={}, step=1)
    with pytest.raises(
        ConflictError, match=r"shape mismatches: .*maps\.f\.weight: \[3, 3\] in the file, \[4, 4\] in the module"
    ):
        load_checkpoint(tmp_path, module=TwoEdges(width=4))


def test_a_file_instead_of_a_folder_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, module=TwoEdges(), state={}, step=1)
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_checkpoint(path / "state.pt", module=TwoEdges())


def test_the_module_documents_its_api():
    assert set(ckpt.__all__) >= {
        "save_checkpoint",
        "load_checkpoint",
        "load_state",
        "latest_checkpoint",
    }
    assert set(randomness.__all__) == {"seed_all", "rng_state", "set_rng_state"}
    for word in ("layout", "Atomicity", "weights_only", "commit point", "Integrity", "SHA-256"):
        assert word in ckpt.__doc__


# ---------------------------------------------------------------------------- unreadable files


def relabelled(data, change):
    """The safetensors ``data`` with its header JSON changed by ``change(header)``."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    change(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def rewrite_state(folder, change):
    """Rewrite ``state.pt`` as it is after ``change(state)`` (behind save_checkpoint's back)."""
    state = torch.load(folder / "state.pt", weights_only=True)
    change(state)
    torch.save(state, folder / "state.pt")


DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "one byte": lambda data: data[:1],
    "garbage": lambda data: b"\x00not a zip archive" * 10,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_an_unreadable_state_file_is_a_checkpoint_error_naming_it(tmp_path, damage):
    path = save_checkpoint(tmp_path, module=TwoEdges(), state={"step": 1}, step=1)
    state_file = path / "state.pt"
    state_file.write_bytes(DAMAGE[damage](state_file.read_bytes()))
    fresh = TwoEdges()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(CheckpointError, match=re.escape(f"{state_file}: cannot be read")) as info:
        load_checkpoint(path, module=fresh)
    assert isinstance(info.value, DiagramError) and isinstance(info.value, ValueError)
    with pytest.raises(CheckpointError, match=re.escape(str(state_file))):
        load_state(path)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("damage", ["empty", "truncated", "one byte", "garbage", "flipped"])
def test_an_unreadable_or_altered_model_file_is_a_checkpoint_error_naming_it(tmp_path, damage):
    path = save_checkpoint(tmp_path, module=TwoEdges(), state={"step": 1}, step=1)
    model_file = path / "model.safetensors"
    data = model_file.read_bytes()
    if damage == "flipped":  # a bit of a weight: the file still reads, only the checksum tells
        model_file.write_bytes(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    else:
        model_file.write_bytes(DAMAGE[damage](data))
    fresh = TwoEdges()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(CheckpointError, match=re.escape(f"{model_file}: its SHA-256 is")):
        load_checkpoint(path, module=fresh)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])
    rewrite_state(path, lambda state: state.pop(ckpt.CHECKSUM_KEY))  # without the checksum: safetensors tells
    if damage != "flipped":
        with pytest.raises(CheckpointError, match=re.escape(f"{model_file}: not a readable safetensors file")):
            load_checkpoint(path, module=fresh)


def test_the_model_file_of_another_checkpoint_is_refused_by_its_checksum(tmp_path):
    first = save_checkpoint(tmp_path, module=trained(seed=0)[0], state={"step": 1}, step=1)
    second = save_checkpoint(tmp_path, module=trained(seed=1)[0], state={"step": 2}, step=2)
    (second / "model.safetensors").write_bytes((first / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"step-000000002/model\.safetensors: its SHA-256 .* not the one saved"):
        load_checkpoint(second, module=TwoEdges())


def test_a_checkpoint_saved_without_a_checksum_still_loads(tmp_path):
    model = trained()[0]
    path = save_checkpoint(tmp_path, module=model, state={"step": 1}, step=1)
    rewrite_state(path, lambda state: state.pop(ckpt.CHECKSUM_KEY))
    fresh = TwoEdges()
    assert load_checkpoint(path, module=fresh) == {"step": 1}
    assert_same_weights(fresh, model)


def test_the_checksum_is_kept_in_state_pt_and_out_of_the_state_returned(tmp_path):
    path = save_checkpoint(tmp_path, module=TwoEdges(), state={"step": 1}, step=1)
    raw = torch.load(path / "state.pt", weights_only=True)
    assert raw[ckpt.CHECKSUM_KEY] == hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    assert load_state(path) == {"step": 1} == load_checkpoint(path, module=TwoEdges())
    with pytest.raises(ValueError, match="may not use the key"):
        save_checkpoint(tmp_path, module=TwoEdges(), state={ckpt.CHECKSUM_KEY: "x"}, step=2)
    assert latest_checkpoint(tmp_path) == path  # the refused save wrote nothing


def test_a_weight_relabelled_to_another_dtype_is_refused_not_converted(tmp_path):
    model = TwoEdges()
    path = save_checkpoint(tmp_path, module=model, state={}, step=1)
    model_file = path / "model.safetensors"
    with safetensors.safe_open(str(model_file), "pt") as f:
        key = next(k for k in f.keys() if k.endswith("weight"))  # noqa: SIM118 - safe_open is not a dict

    def to_int32(header):
        header[key]["dtype"] = "I32"  # the same bytes, read as integers

    model_file.write_bytes(relabelled(model_file.read_bytes(), to_int32))
    rewrite_state(path, lambda state: state.update({ckpt.CHECKSUM_KEY: ckpt.sha256_of(model_file)}))
    fresh = TwoEdges()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(
        ConflictError, match=rf"dtype mismatches: {re.escape(key)}: int32 in the file, float32 in the module"
    ):
        load_checkpoint(path, module=fresh)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])


def test_latest_checkpoint_falls_back_past_unreadable_checkpoints_with_a_warning(tmp_path):
    model = TwoEdges()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, module=model, state={"step": step}, step=step)
    (tmp_path / "step-000000003" / "state.pt").write_bytes(b"")
    (tmp_path / "step-000000002" / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.warns(
        UserWarning,
        match=r"skipped unreadable checkpoint\(s\) step-000000003 \(state\.pt: cannot be read.*step-000000002 \(model\.safetensors: .*using step-000000001",
    ):
        assert latest_checkpoint(tmp_path) == tmp_path / "step-000000001"
    with pytest.warns(UserWarning, match="step-000000003"):
        assert load_checkpoint(tmp_path, module=TwoEdges()) == {"step": 1}
    (tmp_path / "step-000000001" / "state.pt").write_bytes(b"PK")
    with pytest.warns(UserWarning, match="no readable checkpoint is left"):
        assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*step-000000003: state\.pt.*step-000000001"):
        load_checkpoint(tmp_path, module=TwoEdges())


def test_a_readable_newest_checkpoint_is_returned_without_a_warning(tmp_path, recwarn):
    save_checkpoint(tmp_path, module=TwoEdges(), state={"step": 1}, step=1)
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000001"
    assert len(recwarn) == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_key_and_nothing_is_written(tmp_path, value):
    model = TwoEdges()
    save_checkpoint(tmp_path, module=model, state={"step": 1}, step=1)
    before = sorted(p.name for p in tmp_path.iterdir())
    with torch.no_grad():
        model.maps["h"][0].bias[1] = value
    with pytest.raises(NonFiniteError, match=r"the weights maps\.h\.0\.bias hold NaN or infinite values") as info:
        save_checkpoint(tmp_path, module=model, state={"step": 2}, step=2)
    assert isinstance(info.value, FloatingPointError)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000000001"


def test_integer_buffers_are_not_checked_for_finiteness(tmp_path):
    model = TwoEdges()
    model.calls.fill_(2**62)
    save_checkpoint(tmp_path, module=model, state={}, step=1)
    fresh = TwoEdges()
    load_checkpoint(tmp_path, module=fresh)
    assert int(fresh.calls) == 2**62
