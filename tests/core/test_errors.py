"""Every bad input raises the library's own error, naming the offending element."""

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams import errors


def square(**overrides):
    """N → X → Y with labels N → Y: the simplest supervised square."""
    d = ld.Diagram()
    d.space("N", data=overrides.get("data", [(torch.randn(4, 3), torch.randint(2, (4,)))]))
    d.space("X").space("Y", loss=overrides.get("loss", ld.losses.cross_entropy))
    d.map("x", "N", "X", lambda b: b[0]).map("y", "N", "Y", lambda b: b[1])
    d.map("f", "X", "Y", overrides.get("f", nn.Linear(3, 2)))
    return d


def test_error_types_are_also_builtins():
    assert issubclass(errors.UnknownNameError, KeyError)
    assert issubclass(errors.NotParallelError, ValueError)
    assert issubclass(errors.TypeMismatchError, TypeError)
    assert issubclass(errors.DiagramSyntaxError, SyntaxError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.DiagramError)


def test_unknown_vertex_in_a_map():
    with pytest.raises(errors.UnknownNameError, match=r"edge 'g' refers to no vertex named 'Z' \(vertices: N, X, Y\)"):
        square().map("g", "X", "Z", nn.Identity())


def test_unknown_edge_in_a_relation():
    with pytest.raises(errors.UnknownNameError, match=r"path 'x·h' names no edge 'h' \(edges: x, y, f\)"):
        square().relate("x.h", "y")


def test_unknown_vertex_in_an_identity_path():
    with pytest.raises(errors.UnknownNameError, match=r"identity path id\(Q\) refers to no vertex named 'Q'"):
        square().relate("id(Q)", "y")


def test_path_whose_edges_do_not_compose():
    with pytest.raises(errors.NotComposableError, match=r"path 'f·x' does not compose: f ends at Y but x starts at N"):
        square().relate("f·x", "y")


def test_relation_between_paths_that_are_not_parallel():
    with pytest.raises(
        errors.NotParallelError,
        match=r"relation x ≤ y is between paths that are not parallel: x goes N → X but y goes N → Y",
    ):
        square().relate("x", "y")


def test_relation_that_ends_at_a_vertex_with_no_loss_is_whiskered_to_one_with_a_loss():
    d = square().map("g", "N", "X", nn.Identity()).relate("x", "g")
    assert [p.name for p in d.parallel_pairs()] == ["x·f ≤ g·f"]


def test_relation_from_which_no_pair_at_a_loss_follows():
    d = square().space("Z").map("z", "X", "Z", abs).map("w", "X", "Z", abs).relate("x·z", "x·w")
    with pytest.raises(
        errors.NoLossError,
        match=r"relation x·z ≤ x·w compiles no pair: it ends at vertex 'Z', which has no loss, and no path "
        r"leads from there to a vertex with a loss \(Y\)",
    ):
        d.compile()


def test_no_indexing_vertex():
    d = ld.Diagram().space("X").space("Y", loss=ld.losses.mse)
    d.map("f", "X", "Y", nn.Identity()).map("g", "X", "Y", nn.Identity())
    with pytest.raises(errors.NoIndexingVertexError, match=r"no vertex carries data.*\(vertices: X, Y\)"):
        d.compile()


def test_nothing_to_compile():
    d = square().relate("x·f", "y")
    d.spaces["Y"].loss = None
    d.relations.clear()
    with pytest.raises(
        errors.NothingToCompileError, match=r"nothing to compile.*indexing vertex \(N\).*with a loss \(none\)"
    ):
        d.compile()


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda d: d.space("X"), r"vertex 'X' is declared twice"),
        (lambda d: d.map("f", "N", "Y", abs), r"edge 'f' is declared twice \(first as X → Y\)"),
    ],
)
def test_duplicate_names(build, message):
    with pytest.raises(errors.DuplicateNameError, match=message):
        build(square())


@pytest.mark.parametrize("name", ["a.b", "x·y", "1st", "", "a b"])
def test_names_must_be_identifiers(name):
    with pytest.raises(errors.InvalidNameError, match="is not an identifier"):
        ld.Diagram().space(name)


def test_asymmetric_loss_without_an_orientation_lists_the_pairs():
    with pytest.raises(
        errors.OrientationError, match=r"1 pair\(s\).*\n  y and x·f at Y\n.*d.relate\(prediction, target\)"
    ):
        square().compile()


def test_asymmetric_loss_related_both_ways():
    d = square().relate("x·f", "y").relate("y", "x·f")
    with pytest.raises(errors.OrientationError, match=r"y and x·f at Y \(related both ways\)"):
        d.parallel_pairs()


def test_plain_callable_loss_counts_as_asymmetric_until_declared_symmetric():
    with pytest.raises(errors.OrientationError):
        square(loss=lambda a, b: (a - b).abs().mean()).compile()
    symmetric = ld.Loss(lambda a, b: (a - b).abs().mean(), symmetric=True, name="l1")
    assert len(square(loss=symmetric).compile().pairs) == 1


def test_edge_output_that_does_not_fit_the_next_edge_names_edge_and_vertex():
    d = square(f=nn.Linear(5, 2)).relate("x·f", "y")
    with pytest.raises(
        errors.MapError,
        match=r"edge 'f' \(X → Y\) failed on the value at vertex 'X' \(path x·f\), a Tensor\[float32, \(4, 3\)\]: RuntimeError",
    ):
        d.compile()()
    with pytest.raises(errors.MapError, match=r"edge 'f' \(X → Y\) failed"):
        d.check()


def test_loss_that_fails_names_the_pair_and_vertex():
    d = square(f=nn.Linear(3, 2), loss=ld.losses.mse).relate("x·f", "y")
    with pytest.raises(
        errors.MapError,
        match=r"the loss mse at vertex 'Y' failed on pair 'x·f ≤ y', first Tensor\[float32, \(4, 2\)\], second Tensor\[int64, \(4,\)\]",
    ):
        d.compile()()


def test_value_that_does_not_fit_its_vertex_annotation():
    d = square().relate("x·f", "y")
    d.spaces["Y"].type = ld.TensorType(None, 3)
    with pytest.raises(
        errors.TypeMismatchError,
        match=r"edge 'y' \(N → Y\) gave a Tensor\[int64, \(4,\)\] at vertex 'Y' \(path y\), which is annotated TensorType\(None, 3\): .* does not have shape \(\*, 3\)",
    ):
        d.check()


def test_not_an_annotation():
    with pytest.raises(errors.TypeMismatchError, match=r"vertex 'Y': 'big' is not a type annotation"):
        ld.Diagram().space("Y", type="big")


def test_map_that_is_not_callable():
    with pytest.raises(
        errors.TypeMismatchError, match=r"edge 'f' \(N → N\) needs a torch.nn.Module or a callable, got a int"
    ):
        ld.Diagram().space("N").map("f", "N", "N", 3)


def test_weight_for_an_unknown_term():
    with pytest.raises(
        errors.UnknownNameError, match=r"weight given for 'f ≤ y', which is no compiled term \(terms: x·f ≤ y\)"
    ):
        square().relate("x·f", "y").compile(weights={"f ≤ y": 2.0})


def test_batch_for_an_unknown_vertex():
    loss = square().relate("x·f", "y").compile()
    with pytest.raises(errors.UnknownNameError, match=r"a batch was given for 'M', which is not a source"):
        loss(M=1)


def test_one_module_both_frozen_and_trainable():
    shared = nn.Linear(3, 3)
    d = square().space("Z", loss=ld.losses.mse)
    d.map("a", "X", "Z", shared).map("b", "X", "Z", shared, trainable=False).relate("x·a", "x·b")
    with pytest.raises(errors.ConflictError, match=r"trainable edge 'a' and frozen edge 'b'"):
        d.compile()


def test_a_module_part_both_frozen_and_trainable():
    teacher = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    d = square().space("Z", loss=ld.losses.mse)
    d.map("whole", "X", "Z", teacher, trainable=False).map("head", "X", "Z", teacher[1])
    d.relate("x·head", "x·whole")
    with pytest.raises(
        errors.ConflictError,
        match=r"trainable edge 'head' and frozen edge 'whole' share a parameter \('weight' of the one, "
        r"'1.weight' of the other\)",
    ):
        d.compile()
    assert all(p.requires_grad for p in teacher.parameters())  # nothing was frozen on the way


def test_a_lambda_calling_a_frozen_edge_module():
    net = nn.Linear(3, 3)
    d = square().space("Z", loss=ld.losses.mse)
    d.map("frozen", "X", "Z", net, trainable=False).map(
        "calls", "X", "Z", ld.io.Lambda.parse("x -> net(x)", {"net": net})
    )
    d.relate("x·calls", "x·frozen")
    with pytest.raises(
        errors.ConflictError, match=r"trainable edge 'calls' and frozen edge 'frozen' share a parameter"
    ):
        d.compile()


def test_one_shot_iterator_as_data():
    d = square(data=iter([1, 2])).relate("x·f", "y")
    with pytest.raises(errors.TypeMismatchError, match=r"data of vertex 'N' is a one-shot iterator"):
        d.compile()()


# -- no silent no-ops at the core (issue 11) ----------------------------------------------


def test_a_relation_weight_must_be_a_finite_number_and_the_error_names_the_relation():
    d = square().space("Z", loss=ld.losses.mse).map("p", "X", "Z", abs).map("q", "X", "Z", abs)
    with pytest.raises(errors.TypeMismatchError, match=r"relation p ≤ q: its weight must be a number, got 'abc'"):
        d.relate("p", "q", weight="abc")
    with pytest.raises(errors.OptionError, match=r"relation p ≤ q: its weight must be finite, got nan"):
        d.relate("p", "q", weight=float("nan"))
    with pytest.raises(errors.TypeMismatchError, match="got True"):
        d.relate("p", "q", weight=True)
    assert d.relate("p", "q", weight=-2).relations[-1].weight == -2.0  # adversarial terms are allowed


@pytest.mark.parametrize("loss", [3, nn.MSELoss, "mse"])
def test_a_bad_loss_names_its_vertex(loss):
    with pytest.raises(errors.TypeMismatchError, match=r"^vertex 'Y': a loss must be a Loss"):
        ld.Diagram().space("Y", loss=loss)


@pytest.mark.parametrize(
    ("fn", "shown"),
    [(lambda a, b: (a - b) ** 2, r"Tensor\[float32, \(4, 1\)\]"), (lambda a, b: 0.5, "float")],
    ids=["a vector", "a float"],
)
def test_a_loss_that_returns_no_scalar_tensor_names_its_term(fn, shown):
    d = square().space("Z", loss=ld.Loss(fn, symmetric=True)).map("p", "X", "Z", nn.Linear(3, 1))
    d.map("q", "X", "Z", nn.Linear(3, 1)).relate("x·p", "x·q")
    with pytest.raises(errors.TypeMismatchError, match=rf"at vertex 'Z' returned {shown} for pair 'x·p ≤ x·q'"):
        d.compile()()


def test_the_error_catalogue_lists_every_error_class():
    from pathlib import Path

    catalogue = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    missing = [
        n for n in errors.__all__ if n != "DiagramError" and f"[learning_diagrams.core.errors.{n}]" not in catalogue
    ]
    assert missing == [], f"docs/errors.md does not say when these are raised and what to do: {missing}"
