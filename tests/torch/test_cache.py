"""The frozen-output cache: what it keeps, that it changes no number, and when it lets go."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import learning_diagrams as ld
from learning_diagrams.core.errors import OptionError
from learning_diagrams.torch.cache import FrozenCache, frozen_prefixes
from learning_diagrams.torch.keyed import Keyed


class Counting(nn.Module):
    """A teacher that counts the samples it sees."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.net(x)


def images(batch):
    return batch[0]


def labels(batch):
    return batch[1]


def distillation(data, teacher, student, *, x=images, soft=None):
    return (
        ld.Diagram()
        .space("N", data=data)
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", x)
        .map("y", "N", "Y", labels)
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", soft if soft is not None else nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )


X, Y = torch.randn(64, 4, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 3


def batches(size=16):
    return [(X[i : i + size], Y[i : i + size]) for i in range(0, 64, size)]


def run(data, cache, *, epochs=4, teacher=None, **options):
    """Losses of every step and the student's weights after ``epochs`` of distillation, and the teacher."""
    teacher = teacher if teacher is not None else Counting()
    torch.manual_seed(5)
    student = nn.Linear(4, 3)
    d = distillation(data, teacher, student, **options.pop("diagram", {}))
    history = ld.fit(d, epochs=epochs, log_dir=False, progress=False, device="cpu", cache=cache, **options)
    return [r["values"] for r in history.records], student.weight.detach().clone(), teacher


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(batches, id="list of batches"),
        pytest.param(lambda: (X, Y), id="one full batch"),
        pytest.param(lambda: DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True), id="shuffled loader"),
        pytest.param(lambda: TensorDataset(X, Y), id="bare TensorDataset"),
    ],
)
def test_auto_computes_the_teacher_once_per_sample_and_changes_no_number(make):
    plain, plain_weights, plain_teacher = run(make(), False)
    cached, cached_weights, cached_teacher = run(make(), "auto")
    assert cached == plain  # every logged loss, bit for bit
    assert torch.equal(cached_weights, plain_weights)
    assert plain_teacher.seen == 4 * 64 and cached_teacher.seen == 64


def test_a_shuffled_loader_with_a_short_last_batch_is_cached_in_index_order():
    make = lambda: DataLoader(TensorDataset(X, Y), batch_size=24, shuffle=True)  # noqa: E731  (24, 24, 16)
    plain, _, _ = run(make(), False)
    cached, _, teacher = run(make(), "auto")
    assert teacher.seen == 64
    for a, b in zip(plain, cached):
        for name in a:
            assert b[name] == pytest.approx(a[name], rel=1e-5, abs=1e-6)  # rounding only (see the docs)


class Plain(Dataset):
    """A map-style dataset the library cannot see is fixed."""

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return X[i], Y[i]


def test_auto_leaves_other_datasets_alone_and_true_keys_them_by_index():
    loader = lambda: DataLoader(Plain(), batch_size=16)  # noqa: E731
    assert run(loader(), "auto")[2].seen == 4 * 64
    plain, weights, _ = run(loader(), False)
    cached, cached_weights, teacher = run(loader(), True)
    assert teacher.seen == 64 and cached == plain and torch.equal(cached_weights, weights)


def test_cache_false_never_caches():
    assert run(batches(), False)[2].seen == 4 * 64


def test_evaluation_uses_the_cache_and_held_out_data_is_keyed_on_its_own():
    teacher = Counting()
    held_out = [(X[:32], Y[:32])]
    plain, _, _ = run(batches(), False, eval_data={"N": held_out}, epochs=3)
    cached, _, _ = run(batches(), "auto", eval_data={"N": held_out}, epochs=3, teacher=teacher)
    assert cached == plain
    assert teacher.seen == 64 + 32  # training data once, held-out data once, over three epochs


def test_trainer_evaluate_reuses_what_it_computed_until_the_teacher_changes():
    teacher = Counting()
    loss = distillation(batches(), teacher, nn.Linear(4, 3)).compile()
    trainer = ld.Trainer(device="cpu", log_dir=False, progress=False)
    data = batches()[:2]
    first = trainer.evaluate(loss, {"N": data})
    again = trainer.evaluate(loss, {"N": data})
    assert first == again and teacher.seen == 32  # the same list: found again
    trainer.evaluate(loss, {"N": batches()[:2]})
    assert teacher.seen == 64  # another list (of other tensors) is other data
    teacher.load_state_dict(Counting(seed=7).state_dict())  # new weights: what was kept is stale
    changed = trainer.evaluate(loss, {"N": data})
    assert teacher.seen == 96
    fresh = ld.Trainer(device="cpu", cache=False).evaluate(loss, {"N": data})
    assert changed == fresh != first


def test_a_swapped_or_unfrozen_teacher_in_a_later_stage_is_computed_again():
    data = batches()
    a, b = Counting(0), Counting(3)
    student = nn.Linear(4, 3)
    first = distillation(data, a, student)
    swapped = distillation(data, b, student)
    unfrozen = distillation(data, a, student).unfreeze("teacher")  # (unfreeze changes its diagram)
    stages = [ld.Stage(first, epochs=2), ld.Stage(swapped, epochs=2), ld.Stage(unfrozen, epochs=1)]

    def losses(cache):
        for m in (a, b):
            m.seen = 0
        torch.manual_seed(0)
        student.reset_parameters()
        a.load_state_dict(Counting(0).state_dict())
        history = ld.fit(stages, log_dir=False, progress=False, device="cpu", cache=cache)
        return [r["values"] for r in history.records], a.seen, b.seen

    plain, cached = losses(False), losses("auto")
    assert cached[0] == plain[0]
    assert cached[1:] == (64 + 64, 64)  # a: stage 1 once, then trained in stage 3 (not fixed: every step)


def noisy(batch):
    return batch[0] + 0.01 * torch.randn_like(batch[0])


def test_a_map_that_draws_random_numbers_is_not_cached_and_says_so():
    with pytest.warns(
        UserWarning, match=r"the value at x·teacher \(from 'N'\) is not cached: computing it draws random"
    ):
        cached, weights, teacher = run(batches(), "auto", diagram={"x": noisy})
    plain, plain_weights, _ = run(batches(), False, diagram={"x": noisy})
    assert teacher.seen == 4 * 64 and cached == plain and torch.equal(weights, plain_weights)


class InPlace(nn.Module):
    """A map without parameters that writes into its input."""

    def forward(self, x):
        return x.mul_(1.0)


def test_a_kept_value_a_later_map_writes_into_is_dropped_and_the_prefix_no_longer_cached():
    with pytest.warns(UserWarning, match=r"the value at x·teacher .* a later map modified it in place"):
        cached, _, teacher = run(batches(), "auto", diagram={"soft": InPlace()})
    plain, _, _ = run(batches(), False, diagram={"soft": InPlace()})
    # Epoch 1 kept the values (and the map wrote into them); epoch 2 found them changed: from then on, every step.
    assert cached == plain and teacher.seen == 4 * 64


@pytest.mark.parametrize("make", [batches, lambda: DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True)])
def test_past_the_budget_values_go_to_disk_and_come_back_the_same(make, tmp_path):
    plain, weights, _ = run(make(), False)
    cached, cached_weights, teacher = run(make(), "auto", cache_bytes=0)
    assert cached == plain and torch.equal(cached_weights, weights) and teacher.seen == 64
    cache = FrozenCache(cache_bytes=0, folder=tmp_path)
    loss = distillation(make(), Counting(), nn.Linear(4, 3)).compile()
    loss.cache = cache
    for _ in range(5):
        loss()
    folders = list(tmp_path.iterdir())
    assert cache.used["device"] == 0 and cache.used["disk"] > 0 and len(folders) == 1 and any(folders[0].iterdir())
    cache.close()
    assert not folders[0].exists()


def test_a_value_without_a_row_per_sample_is_not_kept_by_sample():
    class Summary(nn.Module):  # a statistic of the whole batch: no row per sample
        def __init__(self, trained=False):
            super().__init__()
            self.lin = nn.Linear(4, 4) if trained else nn.Identity()

        def forward(self, x):
            return self.lin(x).mean(0)

    d = (
        ld.Diagram()
        .space("N", data=DataLoader(TensorDataset(X, Y), batch_size=16))
        .space("X")
        .space("G", loss=ld.losses.mse)
        .map("x", "N", "X", images)
        .map("summary", "X", "G", Summary(), trainable=False)
        .map("f", "X", "G", Summary(trained=True))
        .relate("x·f", "x·summary")
    )
    with pytest.warns(UserWarning, match="not a tensor .* with one row per sample"):
        ld.fit(d, epochs=2, log_dir=False, progress=False, device="cpu")


def test_frozen_prefixes_are_the_fixed_ones_with_a_frozen_module_that_something_else_reads():
    encoder = nn.Linear(4, 4)
    trained = nn.Linear(4, 4)
    d = (
        ld.Diagram()
        .space("N", data=batches())
        .space("X")
        .space("Z")
        .space("W")
        .space("G", loss=ld.losses.mse)
        .map("x", "N", "X", images)
        .map("enc", "X", "Z", encoder, trainable=False)
        .map("head", "Z", "G", nn.Linear(4, 3))
        .map("frozen_head", "Z", "G", nn.Linear(4, 3), trainable=False)
        .map("peek", "X", "W", lambda v: trained(v))  # reaches a trainable module: not fixed
        .map("w", "W", "G", nn.Linear(4, 3), trainable=False)
        .map("trained", "X", "W", trained)
        .relate("x·enc·head", "x·enc·frozen_head")
        .relate("x·peek·w", "x·trained·w")
    )
    pairs = d.compiled_pairs()
    assert frozen_prefixes(pairs, d.maps) == {"N": (("x", "enc"), ("x", "enc", "frozen_head"))}


def test_keyed_data_yields_the_loaders_own_batches_in_its_order_with_their_indices():
    loader = DataLoader(TensorDataset(X, Y), batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(3))
    expected = [
        b
        for b in DataLoader(
            TensorDataset(X, Y), batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(3)
        )
    ]
    keyed = list(FrozenCache().keyed(loader, "N"))
    assert all(type(k) is Keyed for k in keyed)
    for k, (x, y) in zip(keyed, expected, strict=True):
        assert torch.equal(k.batch[0], x) and torch.equal(k.batch[1], y)
        assert torch.equal(X[k.key.indices], x)


def test_bad_options_are_refused():
    with pytest.raises(OptionError, match="cache 'yes' is not one of 'auto', True, False"):
        ld.fit(distillation(batches(), Counting(), nn.Linear(4, 3)), cache="yes", log_dir=False)
    with pytest.raises(OptionError, match="cache_bytes must be an int of at least 0, got -1"):
        ld.Trainer(cache_bytes=-1)


def test_a_copy_for_another_process_has_the_options_and_the_data_but_no_values():
    import pickle

    cache = FrozenCache(True, cache_bytes=123)
    loader = cache.keyed(DataLoader(TensorDataset(X, Y), batch_size=16), "N")
    loss = distillation(loader, Counting(), nn.Linear(4, 3)).compile()
    loss.cache = cache
    loss()
    assert cache.misses == 1
    copied = pickle.loads(pickle.dumps(cache))
    assert (copied.mode, copied.cache_bytes, copied.hits, copied.misses) == (True, 123, 0, 0)
    assert len(copied._data) == 1 and len(next(iter(copied._data.values())).dataset) == 64


def test_lightning_uses_the_cache():
    pytest.importorskip("lightning")
    import lightning

    from learning_diagrams.integrations.lightning import DiagramModule

    def seen(cache):
        teacher = Counting()
        d = distillation(DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True), teacher, nn.Linear(4, 3))
        module = DiagramModule(d, lr=0.01, cache=cache)
        trainer = lightning.Trainer(
            max_epochs=3,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(module)
        return teacher.seen

    assert seen(False) == 3 * 64 and seen("auto") == 64


def test_auto_does_not_cache_a_single_pass_where_nothing_could_be_reused(monkeypatch):
    calls = []
    monkeypatch.setattr(FrozenCache, "values", lambda self, *args: calls.append(1) or ((), []))
    run(batches(), "auto", epochs=1)
    assert calls == []
    run(batches(), True, epochs=1)
    assert len(calls) == 4


def test_samples_are_computed_in_index_order_in_batches_of_the_loaders_size():
    teacher = Counting()
    loader = DataLoader(TensorDataset(X, Y), batch_size=24, shuffle=True)
    loss = distillation(loader, teacher, nn.Linear(4, 3)).compile()
    loss.cache = cache = FrozenCache()
    loss()  # the first batch misses: every sample is computed, 24 at a time, in index order
    assert teacher.seen == 64
    (store,) = [s for s in cache._stores.values() if s.rows is not None]
    with torch.no_grad():
        expected = torch.cat([teacher.net(X[i : i + 24]) for i in range(0, 64, 24)])
    assert torch.equal(store.rows.rows[0], expected) and bool(store.rows.filled.all())
    for _ in range(5):
        loss()
    assert teacher.seen == 64 and cache.hits == 5


def test_a_run_resumed_from_a_checkpoint_ends_bit_for_bit_where_the_unbroken_run_ends(tmp_path):
    # Shapes at which this CPU's matrix product rounds a row differently at another place in the batch
    # (bench/crash.py's regime): values computed on the shuffled batches would differ between the runs.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)

    def fit(folder, **options):
        torch.manual_seed(1)
        teacher = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
        torch.manual_seed(2)
        student = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
        data = DataLoader(TensorDataset(x, x[:, :3].argmax(dim=1)), batch_size=8, shuffle=True)
        d = distillation(data, teacher, student)
        history = ld.fit(
            d, epochs=4, seed=3, checkpoint_dir=folder, checkpoint_every=1, log_dir=False, progress=False, **options
        )
        return [r["values"] for r in history.records], student.state_dict()

    whole, weights = fit(tmp_path / "whole")
    part, _ = fit(tmp_path / "cut", max_steps=12)  # stopped in the third epoch
    rest, resumed = fit(tmp_path / "cut", resume=tmp_path / "cut")
    assert part + rest == whole
    assert all(torch.equal(weights[k], resumed[k]) for k in weights)
