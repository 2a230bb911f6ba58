"""The JAX back end against the PyTorch one: the same diagram, the same weights, the same terms and gradients."""

from __future__ import annotations

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import NoBatchError, UnknownNameError

jax.config.update("jax_enable_x64", False)
TOL = 1e-5


class MLP(eqx.Module):
    """A two-layer perceptron over a batch (rows are samples), its weights laid out as torch's."""

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(x @ self.w1.T + self.b1) @ self.w2.T + self.b2

    @classmethod
    def like(cls, module: nn.Sequential) -> MLP:
        first, _, second = module
        arrays = [p.detach().numpy() for p in (first.weight, first.bias, second.weight, second.bias)]
        return cls(*(jnp.asarray(a) for a in arrays))


class Linear(eqx.Module):
    """``x @ w.T + b`` over a batch, as ``torch.nn.Linear``."""

    w: jax.Array
    b: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w.T + self.b

    @classmethod
    def like(cls, module: nn.Linear) -> Linear:
        return cls(jnp.asarray(module.weight.detach().numpy()), jnp.asarray(module.bias.detach().numpy()))


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def close(a, b, tol: float = TOL) -> bool:
    return np.allclose(np.asarray(a), np.asarray(b), atol=tol, rtol=tol)


def distillation(teacher, student, data, soft_map=lambda v: v, hard_map=lambda v: v) -> ld.Diagram:
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
        .map("hard", "L", "Y", hard_map)
        .map("soft", "L", "G", soft_map)
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )


def torch_grads(loss, batches) -> dict[str, list[np.ndarray]]:
    loss.zero_grad(set_to_none=True)
    total, _ = loss(batches)
    total.backward()
    return {name: [p.grad.numpy() for p in m.parameters()] for name, m in loss.trainable_maps().items()}


@pytest.fixture
def distilled():
    torch.manual_seed(0)
    teacher, student = mlp(8, 32, 5), mlp(8, 6, 5)
    x, y = torch.randn(16, 8), torch.randint(5, (16,))
    ours = ld.jax.compile(distillation(MLP.like(teacher), MLP.like(student), [(x.numpy(), y.numpy())]))
    theirs = distillation(teacher, student, [(x, y)]).compile()
    return ours, theirs, (jnp.asarray(x.numpy()), jnp.asarray(y.numpy())), (x, y)


def test_distillation_terms_and_gradients_equal_pytorch(distilled):
    ours, theirs, batch, torch_batch = distilled
    total, terms = ours(ours.params, {"N": batch})
    expected_total, expected_terms = theirs({"N": torch_batch})
    assert list(terms) == list(expected_terms) == ["x·student·hard ≤ y", "x·student·soft ≤ x·teacher·soft"]
    assert close(total, expected_total.detach())
    for name in terms:
        assert close(terms[name], expected_terms[name].detach())
    grads = jax.grad(lambda p: ours(p, {"N": batch}).total)(ours.params)
    assert list(grads) == ["student"]  # the frozen teacher has no parameters here
    expected = torch_grads(theirs, {"N": torch_batch})["student"]
    got = [grads["student"].w1, grads["student"].b1, grads["student"].w2, grads["student"].b2]
    assert all(close(g, e) for g, e in zip(got, expected))


def test_jit_and_grad_take_the_loss_as_it_is(distilled):
    ours, _, batch, _ = distilled
    eager = ours(ours.params, {"N": batch})
    jitted = jax.jit(ours)(ours.params, {"N": batch})
    assert close(eager.total, jitted.total) and list(jitted.terms) == list(eager.terms)
    value, grads = jax.jit(jax.value_and_grad(lambda p, b: ours(p, b).total))(ours.params, {"N": batch})
    assert close(value, eager.total)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(ours.params)


def test_a_frozen_map_gets_no_gradient_but_passes_one_through():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    enc = Linear(jax.random.normal(k1, (3, 4)), jnp.zeros(3))
    frozen = Linear(jax.random.normal(k2, (2, 3)), jnp.zeros(2))
    x = jax.random.normal(k3, (5, 4))
    d = (
        ld.Diagram()
        .space("N", data=x)
        .space("Z")
        .space("Y", loss=ld.losses.mse)
        .map("enc", "N", "Z", enc)
        .map("frozen", "Z", "Y", frozen, trainable=False)
        .map("zero", "N", "Y", lambda b: jnp.zeros((b.shape[0], 2)))
        .relate("enc·frozen", "zero")
    )
    loss = ld.jax.compile(d)
    assert list(loss.params) == ["enc"]
    grads = jax.grad(lambda p: loss(p, {"N": x}).total)(loss.params)
    assert float(jnp.abs(grads["enc"].w).sum()) > 0  # through the frozen map


def test_a_prefix_no_trainable_map_precedes_is_under_stop_gradient():
    def teacher(x):
        return x * 3.0

    d = (
        ld.Diagram()
        .space("N", data=jnp.ones((2, 2)))
        .space("Y", loss=ld.losses.mse)
        .map("t", "N", "Y", teacher, trainable=False)
        .map("s", "N", "Y", Linear(jnp.eye(2), jnp.zeros(2)))
        .relate("s", "t")
    )
    loss = ld.jax.compile(d)
    # The gradient with respect to the batch flows through the student only.
    g = jax.grad(lambda b: loss(loss.params, {"N": b}).total)(jnp.ones((2, 2)))
    # d/db mean((b - 3b)²) with 3b a constant: 2(b - 3b)/4 = -1 (through the teacher too it would be +2)
    assert close(g, jnp.full((2, 2), -1.0))


def test_a_backbone_shared_by_fifty_heads_runs_once_and_matches_pytorch():
    torch.manual_seed(1)
    backbone, heads = nn.Linear(6, 8), [nn.Linear(8, 3) for _ in range(50)]
    x, labels = torch.randn(10, 6), torch.randint(3, (10, 50))
    calls = []

    class Counted(Linear):
        def __call__(self, x):
            calls.append(1)
            return super().__call__(x)

    def build(back, hs, data, batch_of):
        d = ld.Diagram().space("N", data=data).space("X").space("F")
        d.map("x", "N", "X", lambda b: b[0]).map("backbone", "X", "F", back)
        for i, h in enumerate(hs):
            d.space(f"Y{i}", loss=ld.losses.cross_entropy)
            d.map(f"y{i}", "N", f"Y{i}", lambda b, i=i: batch_of(b[1], i)).map(f"head{i}", "F", f"Y{i}", h)
            d.relate(f"x·backbone·head{i}", f"y{i}")
        return d

    ours = ld.jax.compile(
        build(
            Counted.like(backbone), [Linear.like(h) for h in heads], [(x.numpy(), labels.numpy())], lambda y, i: y[:, i]
        )
    )
    theirs = build(backbone, heads, [(x, labels)], lambda y, i: y[:, i]).compile()
    batch = (jnp.asarray(x.numpy()), jnp.asarray(labels.numpy()))
    total, terms = ours(ours.params, {"N": batch})
    assert len(calls) == 1 and len(terms) == 50
    expected_total, _ = theirs({"N": (x, labels)})
    assert close(total, expected_total.detach())
    grads = jax.grad(lambda p: ours(p, {"N": batch}).total)(ours.params)
    expected = torch_grads(theirs, {"N": (x, labels)})
    assert close(grads["backbone"].w, expected["backbone"][0]) and close(grads["head7"].b, expected["head7"][1])


def test_the_autoencoder_cycle_matches_pytorch():
    torch.manual_seed(2)
    enc, dec = nn.Linear(5, 2), nn.Linear(2, 5)
    x = torch.randn(7, 5)

    def build(e, dd, data):
        return (
            ld.Diagram()
            .space("N", data=data)
            .space("X", loss=ld.losses.mse)
            .space("Z")
            .map("x", "N", "X", lambda b: b)
            .map("enc", "X", "Z", e)
            .map("dec", "Z", "X", dd)
            .relate("x·enc·dec", "x")
        )

    ours = ld.jax.compile(build(Linear.like(enc), Linear.like(dec), x.numpy()))
    theirs = build(enc, dec, x).compile()
    total, terms = ours(ours.params, {"N": jnp.asarray(x.numpy())})
    expected_total, expected_terms = theirs({"N": x})
    assert list(terms) == list(expected_terms) and close(total, expected_total.detach())
    grads = jax.grad(lambda p: ours(p, {"N": jnp.asarray(x.numpy())}).total)(ours.params)
    expected = torch_grads(theirs, {"N": x})
    assert close(grads["enc"].w, expected["enc"][0]) and close(grads["dec"].b, expected["dec"][1])


def test_a_glued_diagram_compiles_to_the_same_terms_as_on_pytorch():
    torch.manual_seed(3)
    backbone, heads = nn.Linear(4, 3), [nn.Linear(3, 2), nn.Linear(3, 2)]
    data = [(torch.randn(6, 4), torch.randint(2, (6,))) for _ in range(2)]

    def glued(back, hs, sets):
        along = ld.Diagram().space("X").space("F").map("backbone", "X", "F", back)
        tasks = [
            ld.Diagram()
            .space("N", data=sets[i])
            .space("X")
            .space("F")
            .space("Y", loss=ld.losses.cross_entropy)
            .map("x", "N", "X", lambda b: b[0])
            .map("y", "N", "Y", lambda b: b[1])
            .map("backbone", "X", "F", back)
            .map("head", "F", "Y", hs[i])
            .relate("x·backbone·head", "y")
            for i in range(2)
        ]
        return ld.glue(*tasks, along=along).apex

    np_sets = [[(x.numpy(), y.numpy())] for x, y in data]
    ours = ld.jax.compile(glued(Linear.like(backbone), [Linear.like(h) for h in heads], np_sets))
    theirs = glued(backbone, heads, [[b] for b in data]).compile()
    batches = {f"N_{i}": (jnp.asarray(x.numpy()), jnp.asarray(y.numpy())) for i, (x, y) in enumerate(data)}
    total, terms = ours(ours.params, batches)
    expected_total, expected_terms = theirs({f"N_{i}": b for i, b in enumerate(data)})
    assert list(terms) == list(expected_terms) and close(total, expected_total.detach())
    assert sorted(ours.params) == ["backbone", "head_0", "head_1"]
    grads = jax.grad(lambda p: ours(p, batches).total)(ours.params)
    expected = torch_grads(theirs, {f"N_{i}": b for i, b in enumerate(data)})
    assert close(grads["backbone"].w, expected["backbone"][0]) and close(grads["head_1"].b, expected["head_1"][1])


def test_weights_reduction_sum_and_a_missing_source():
    x = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    d = (
        ld.Diagram()
        .space("N", data=[x[:3], x[3:]])
        .space("Y", loss=ld.losses.mse)
        .map("f", "N", "Y", lambda b: 2 * b)
        .map("g", "N", "Y", lambda b: b)
        .relate("f", "g", weight=0.5)
    )
    mean = ld.jax.compile(d)
    summed = ld.jax.compile(d, reduction="sum")
    batch = jnp.asarray(x[:3])
    assert close(mean(mean.params, {"N": batch}).total, 0.5 * np.mean(x[:3] ** 2))
    # Σ over the batch of each sample's mean, scaled by |X| / |B| = 6 / 3
    assert close(summed(summed.params, {"N": batch}).total, 0.5 * 2 * np.sum(np.mean(x[:3] ** 2, axis=1)))
    weighted = ld.jax.compile(d, weights={"f ≤ g": 2.0})
    assert close(weighted(weighted.params, {"N": batch}).total, 2.0 * np.mean(x[:3] ** 2))
    with pytest.raises(NoBatchError, match="no source vertex has a batch"):
        mean(mean.params, {"N": None})
    with pytest.raises(UnknownNameError, match="'M'.*not a source"):
        mean(mean.params, {"M": batch})


def test_diagram_compile_takes_the_jax_back_end_by_name():
    d = (
        ld.Diagram()
        .space("N", data=jnp.ones((3, 2)))
        .space("Y", loss=ld.losses.l1)
        .map("f", "N", "Y", lambda b: b + 1)
        .map("g", "N", "Y", lambda b: b)
        .relate("f", "g")
    )
    loss = d.compile(backend="jax")
    assert type(loss).__module__ == "learning_diagrams.jax.compiled"
    assert close(loss(loss.params, {"N": jnp.ones((3, 2))}).total, 1.0)
    # A library loss called on JAX arrays finds its JAX formula.
    assert close(ld.losses.mse(jnp.ones(3), jnp.zeros(3)), 1.0)


def test_importing_the_jax_back_end_imports_no_torch():
    code = "import learning_diagrams as ld, sys; ld.jax.compile; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_failing_map_is_named_with_its_path():
    d = (
        ld.Diagram()
        .space("N", data=jnp.ones((3, 2)))
        .space("Y", loss=ld.losses.l1)
        .map("f", "N", "Y", lambda b: b @ jnp.ones((5, 1)))
        .map("g", "N", "Y", lambda b: b)
        .relate("f", "g")
    )
    loss = ld.jax.compile(d)
    with pytest.raises(ld.errors.MapError, match="'f'"):
        loss(loss.params, {"N": jnp.ones((3, 2))})


def test_the_optax_loop_of_the_docs_trains_and_gives_modules_back(distilled):
    import optax

    ours, _, batch, _ = distilled
    optimiser = optax.adam(1e-2)
    params, state = ours.params, optimiser.init(ours.params)

    @jax.jit
    def step(params, state, batches):
        (total, terms), grads = jax.value_and_grad(lambda p: ours(p, batches), has_aux=True)(params)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state, total, terms

    first = None
    for _ in range(30):
        params, state, total, terms = step(params, state, {"N": batch})
        first = total if first is None else first
    assert float(total) < float(first) and list(terms) == list(ours.terms)
    student = ours.functions(params)["student"]
    assert isinstance(student, MLP) and not close(student.w1, ours.params["student"].w1)


def test_a_plain_function_reaching_a_module_no_edge_holds_is_warned_about():
    hidden = Linear(jnp.ones((2, 2)), jnp.zeros(2))
    held = Linear(jnp.ones((2, 2)), jnp.zeros(2))
    d = (
        ld.Diagram()
        .space("N", data=jnp.ones((3, 2)))
        .space("Y", loss=ld.losses.mse)
        .map("f", "N", "Y", lambda b: hidden(b) + held(b))
        .map("g", "N", "Y", held)
        .relate("f", "g")
    )
    with pytest.warns(UserWarning, match=r"edge 'f' .* Equinox module 'hidden' \(a Linear, 6 array elements\)") as seen:
        ld.jax.compile(d)
    assert not any("'held'" in str(w.message) for w in seen)


def test_a_diagram_written_in_the_text_syntax_compiles_on_jax():
    model = Linear(jnp.eye(2), jnp.zeros(2))
    d = ld.parse(
        """
        N ⇒ [batches]
        Y ⇒ mse
        x: N → Y ⇒ (a, b) → a
        y: N → Y ⇒ (a, b) → b
        f: Y → Y
        x · f ≤ y
        """,
        {"batches": [(np.ones((3, 2), np.float32), np.zeros((3, 2), np.float32))], "f": model},
    )
    loss = ld.jax.compile(d)
    assert list(loss.params) == ["f"] and list(loss.terms) == ["x·f ≤ y"]
    total, _ = loss(loss.params, {"N": (jnp.ones((3, 2)), jnp.zeros((3, 2)))})
    assert close(total, 1.0)
    with pytest.warns(UserWarning, match="Equinox module"):  # a lambda calling a module holds it as a constant
        ld.jax.compile(
            ld.parse(
                "N ⇒ [batches]\nY ⇒ mse\nf: N → Y ⇒ v → m(v)\ng: N → Y ⇒ v → v\nf ≤ g",
                {"batches": [np.ones((3, 2), np.float32)], "m": model},
            )
        )


def test_the_distillation_demo_runs_on_jax_and_matches_pytorch_for_a_step(tmp_path):
    from learning_diagrams.examples import distillation

    results = distillation.main(["--backend", "jax", "--epochs", "1", "--quiet", "--log-dir", str(tmp_path)])
    assert (tmp_path / "jax" / "distilled" / "log.jsonl").exists()
    assert set(results) >= {"teacher", "student", "distilled student"}
    assert results["gap_loss"] < 1e-5 and results["gap_gradients"] < 1e-5
    with pytest.raises(SystemExit):  # the comparison run is PyTorch's
        distillation.main(["--backend", "jax", "--hand"])


@pytest.mark.parametrize("losses", ["tutorial", "library"])
@pytest.mark.parametrize("variant", ["kd", "cosine", "regressor"])
def test_every_distillation_variant_computes_pytorch_terms_on_jax(variant, losses):
    from learning_diagrams.examples import distillation as example
    from learning_diagrams.examples import distillation_jax as on_jax

    torch.manual_seed(0)
    teacher, student, regressor = example.DeepNN().eval(), example.LightNN().eval(), example.Regressor()
    x, y = torch.randn(16, 1, 8, 8), torch.randint(10, (16,))
    theirs = example.variant_diagram(variant, teacher, student, regressor, [(x, y)], losses).compile()
    theirs.eval()
    twins = on_jax._split(teacher), on_jax._split(student), on_jax.from_torch(regressor)
    ours = ld.jax.compile(on_jax._variant(variant, *twins, [(x.numpy(), y.numpy())], losses))
    total, terms = ours(ours.params, {"N": (jnp.asarray(x.numpy()), jnp.asarray(y.numpy()))})
    expected_total, expected_terms = theirs({"N": (x, y)})
    assert list(terms) == list(expected_terms)
    assert close(total, expected_total.detach()) and all(close(terms[k], expected_terms[k].detach()) for k in terms)


def test_the_comparison_run_trains_every_variant_on_jax():
    from learning_diagrams.examples import distillation

    argv = ["--backend", "jax", "--seeds", "0", "--epochs", "1", "--limit", "256", "--test-limit", "64", "--quiet"]
    results = distillation.main(argv)
    assert set(results["accuracy"]["diagram"]) == {"teacher", "student", "kd", "cosine", "regressor"}
    assert all(0 <= v[0] <= 100 for v in results["accuracy"]["diagram"].values())


def test_the_documented_vmap_idiom_puts_an_equinox_layer_on_the_batch():
    class Batched(eqx.Module):
        layer: eqx.nn.Linear

        def __call__(self, x):
            return jax.vmap(self.layer)(x)

    layer = eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(0))
    x = jnp.ones((5, 3))
    d = (
        ld.Diagram()
        .space("N", data=x)
        .space("Y", loss=ld.losses.mse)
        .map("f", "N", "Y", Batched(layer))
        .map("zero", "N", "Y", lambda b: jnp.zeros((b.shape[0], 2)))
        .relate("f", "zero")
    )
    loss = ld.jax.compile(d)
    grads = jax.grad(lambda p: loss(p, {"N": x}).total)(loss.params)
    assert grads["f"].layer.weight.shape == (2, 3)
    assert close(loss(loss.params, {"N": x}).total, jnp.mean((x @ layer.weight.T + layer.bias) ** 2))
