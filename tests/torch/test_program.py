"""The compiled loss's fast path (a flat program) against the error-naming path (the evaluator).

A call runs :class:`~learning_diagrams.core.evaluation.Program`; ``outputs()`` and
``trace()`` run the :class:`~learning_diagrams.core.evaluation.Evaluator`, which calls
each map through ``Map.__call__``. Both must give the same numbers to the bit, the
same gradients, the same errors, and the program must let go of every value that
no remaining path needs.
"""

from __future__ import annotations

import gc
import operator
import pickle
import weakref

import pytest
import torch
from torch import nn

import learning_diagrams as ld
from learning_diagrams.core.errors import MapError, TypeMismatchError


def distillation(teacher: nn.Module, student: nn.Module, batch) -> ld.Diagram:
    return (
        ld.Diagram()
        .space("N", data=[batch])
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=2.0))
        .map("x", "N", "X", lambda b: b[0][0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )


def mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 4))


def slow_terms(loss, batches) -> dict[str, torch.Tensor]:
    """The terms as the error-naming path computes them: the evaluator, then each term."""
    return {pair.name: loss.term(pair, first, second) for pair, first, second in loss.outputs(batches)}


def grads(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return (torch.randn(16, 8), torch.randn(16, 8)), torch.randint(4, (16,))


def test_a_call_gives_the_evaluators_terms_and_gradients_to_the_bit(batch):
    torch.manual_seed(1)
    teacher, student = mlp(32), mlp(16)
    loss = distillation(teacher, student, batch).compile().train()  # dropout draws: the same draws on both paths
    torch.manual_seed(2)
    total, fast = loss({"N": batch})
    total.backward()
    fast_grads = grads(student)
    student.zero_grad()
    torch.manual_seed(2)
    slow = slow_terms(loss, {"N": batch})
    sum(slow.values()).backward()
    assert list(fast) == list(slow) == ["x·student·hard ≤ y", "x·student·soft ≤ x·teacher·soft"]
    assert all(torch.equal(fast[name], slow[name]) for name in fast)
    assert all(torch.equal(a, b) for a, b in zip(fast_grads, grads(student)))
    assert all(p.grad is None for p in teacher.parameters())


def test_keyword_batches_a_given_dict_and_drawn_batches_give_the_same_terms(batch):
    loss = distillation(mlp(8), mlp(8), batch).compile().eval()
    by_dict, by_name, drawn = loss({"N": batch}), loss(N=batch), loss()
    assert all(torch.equal(by_dict.terms[k], by_name.terms[k]) for k in by_dict.terms)
    assert all(torch.equal(by_dict.terms[k], drawn.terms[k]) for k in by_dict.terms)


def test_two_sources_one_given_none_skip_its_pairs_as_the_evaluator_does():
    fA, fB = nn.Linear(3, 1), nn.Linear(3, 1)
    d = (
        ld.Diagram()
        .space("A", data=[(torch.randn(4, 3), torch.randn(4, 1))])
        .space("B", data=[(torch.randn(5, 3), torch.randn(5, 1))])
        .space("X")
        .space("Y", loss=ld.losses.mse)
    )
    d.map("xA", "A", "X", lambda b: b[0]).map("yA", "A", "Y", lambda b: b[1])
    d.map("xB", "B", "X", lambda b: b[0]).map("yB", "B", "Y", lambda b: b[1])
    d.map("f", "X", "Y", fA).relate("xA·f", "yA").relate("xB·f", "yB")
    loss = d.compile()
    both, only_b = loss(), loss({"A": None})
    assert list(both.terms) == ["xA·f ≤ yA", "xB·f ≤ yB"]
    assert list(only_b.terms) == ["xB·f ≤ yB"]
    assert torch.equal(only_b.total, slow_terms(loss, {"A": None, "B": next(iter(d.spaces["B"].data))})["xB·f ≤ yB"])
    assert fB.weight.grad is None


def test_a_failing_map_raises_the_evaluators_map_error(batch):
    d = distillation(mlp(8), nn.Linear(5, 4), batch)  # the student takes 5 features, gets 8
    loss = d.compile()
    with pytest.raises(MapError) as fast:
        loss({"N": batch})
    with pytest.raises(MapError) as slow:
        loss.outputs({"N": batch})
    assert str(fast.value) == str(slow.value)
    assert str(fast.value).startswith("edge 'student' (X → L) failed on the value at vertex 'X' (path x·student)")
    assert type(fast.value.__cause__) is type(slow.value.__cause__) is RuntimeError


def test_a_failing_frozen_map_run_without_gradients_is_named_too(batch):
    d = distillation(nn.Linear(5, 4), mlp(8), batch)  # the frozen teacher fails, under no_grad
    with pytest.raises(
        MapError, match=r"^edge 'teacher' \(X → L\) failed on the value at vertex 'X' \(path x·teacher\)"
    ):
        d.compile()({"N": batch})


def test_a_map_that_fails_with_a_map_error_of_its_own_is_wrapped_as_before(batch):
    def inner(b):
        raise MapError("inner failure")

    d = distillation(mlp(8), mlp(8), batch)
    d.maps["y"].fn = inner
    loss = d.compile()
    with pytest.raises(MapError) as fast:
        loss({"N": batch})
    with pytest.raises(MapError) as slow:
        loss.outputs({"N": batch})
    assert str(fast.value) == str(slow.value) and "edge 'y' (N → Y)" in str(fast.value)
    assert str(fast.value.__cause__) == "inner failure"


def test_a_failing_or_non_scalar_loss_raises_as_before(batch):
    failing = ld.Loss(lambda a, b: a.mm(b), name="mm", symmetric=False)
    d = distillation(mlp(8), mlp(8), batch)
    d.spaces["G"].loss = failing
    with pytest.raises(MapError, match=r"^the loss mm at vertex 'G' failed on pair 'x·student·soft ≤ x·teacher·soft'"):
        d.compile()({"N": batch})
    d.spaces["G"].loss = ld.Loss(lambda a, b: (a - b).abs(), name="abs", symmetric=False)
    with pytest.raises(
        TypeMismatchError,
        match=r"^the loss abs at vertex 'G' returned Tensor\[float32, \(16, 4\)\] .*a loss returns a scalar",
    ):
        d.compile()({"N": batch})


class Box:
    """A value that is not a tensor: autograd keeps no reference to it, so only the program can."""

    def __init__(self, value):
        self.value = value


def test_a_prefix_value_is_dropped_once_no_remaining_path_needs_it():
    refs: dict[str, weakref.ref] = {}
    alive_when: dict[str, dict[str, bool]] = {}

    def recording(name):
        def fn(v):
            gc.collect()
            alive_when[name] = {k: r() is not None for k, r in refs.items()}
            out = Box(v.value + 1 if isinstance(v, Box) else v.sum())
            refs[name] = weakref.ref(out)
            return out

        return fn

    boxed = ld.Loss(lambda box, y: (box.value - y.sum()) ** 2, name="boxed", symmetric=False)
    d = ld.Diagram().space("N", data=[torch.ones(3)]).space("A").space("B").space("C").space("Y", loss=boxed)
    d.map("a", "N", "A", recording("a")).map("b", "A", "B", recording("b")).map("c", "B", "C", recording("c"))
    d.map("h", "C", "Y", recording("h")).map("y", "N", "Y", lambda v: v[:1])
    d.relate("a·b·c·h", "y")
    d.compile()()
    assert alive_when["b"] == {"a": True}
    assert alive_when["c"] == {"a": False, "b": True}  # a's value went once b had read it
    assert alive_when["h"] == {"a": False, "b": False, "c": True}
    gc.collect()
    assert all(r() is None for r in refs.values())  # and nothing is held once the call returns


def test_with_check_finite_every_value_is_kept_for_the_diagnosis():
    refs: dict[str, weakref.ref] = {}
    seen: list[bool] = []

    def first(v):
        out = Box(v.sum())
        refs["first"] = weakref.ref(out)
        return out

    def second(box):
        return Box(box.value * 2)

    def third(box):
        gc.collect()
        seen.append(refs["first"]() is not None)
        return box.value.reshape(1)

    d = ld.Diagram().space("N", data=[torch.ones(3)]).space("A").space("B").space("Y", loss=ld.losses.mse)
    d.map("a", "N", "A", first).map("b", "A", "B", second).map("c", "B", "Y", third)
    d.map("y", "N", "Y", lambda v: v[:1]).relate("a·b·c", "y")
    d.compile()()
    d.compile(check_finite=True)()
    assert seen == [False, True]


def test_a_shared_backbone_is_kept_until_its_last_head_has_run():
    refs: dict[str, weakref.ref] = {}
    alive: list[bool] = []

    def backbone(v):
        out = Box(v.sum())
        refs["backbone"] = weakref.ref(out)
        return out

    def head(i):
        def fn(box):
            gc.collect()
            alive.append(refs["backbone"]() is not None)
            return (box.value * i).reshape(1)

        return fn

    d = ld.Diagram().space("N", data=[torch.ones(3)]).space("F").space("Y0", loss=ld.losses.mse)
    d.map("x", "N", "F", backbone).map("y", "N", "Y0", lambda v: v[:1])
    for i in range(3):
        d.map(f"h{i}", "F", "Y0", head(i + 1)).relate(f"x·h{i}", "y")
    d.compile()()
    gc.collect()
    assert alive == [True, True, True] and refs["backbone"]() is None


def test_the_program_lays_out_each_prefix_once_and_calls_the_maps_functions(batch):
    student = mlp(8)
    loss = distillation(mlp(8), student, batch).compile()
    program = loss._program(loss.sources, keep=False)
    prefixes = [op.prefix for op in program.operations]
    # pair by pair, except the frozen teacher, which runs as soon as its input is ready (as by hand);
    # the nn.Identity edges hard and soft are no operations: their prefixes read their arguments' slots
    assert prefixes == [("x",), ("x", "teacher"), ("x", "student"), ("y",)]
    assert [op.step.grad for op in program.operations] == [True, False, True, True]
    assert program.operations[2].step.map.fn is student
    slots = program.slots
    assert slots["N", ("x", "student", "hard")] == slots["N", ("x", "student", "soft")] == slots["N", ("x", "student")]
    assert slots["N", ("x", "teacher", "soft")] == slots["N", ("x", "teacher")]
    assert len(program._blank) == 4  # one slot per operation, none for the identities
    # every value is dropped by the end: a call runs the program as straight-line code; a kept one, the loop
    assert program._straight is not None and loss._program(loss.sources, keep=True)._straight is None


def test_a_pickled_loss_runs_its_program_as_straight_line_code_again():
    x, y = torch.randn(4, 3), torch.randn(4, 2)
    d = ld.Diagram().space("N", data=[(x, y)]).space("X").space("Y", loss=ld.losses.mse)
    d.map("x", "N", "X", operator.itemgetter(0)).map("y", "N", "Y", operator.itemgetter(1))
    loss = d.map("f", "X", "Y", nn.Linear(3, 2)).relate("x·f", "y").compile()
    again = pickle.loads(pickle.dumps(loss))  # as ddp_spawn sends it: the code is made again, not pickled
    assert again._program(again.sources, keep=False)._straight is not None
    assert torch.equal(again({"N": (x, y)}).total, loss({"N": (x, y)}).total)


def test_losses_of_one_shape_share_their_compiled_code_and_each_calls_its_own_maps():
    # Each ld.fit compiles its diagram again: the program's text is compiled once, its maps bound per loss.
    x, y = torch.randn(4, 3), torch.randn(4, 2)

    def linear_loss(f: nn.Module):
        d = ld.Diagram().space("N", data=[(x, y)]).space("X").space("Y", loss=ld.losses.mse)
        d.map("x", "N", "X", operator.itemgetter(0)).map("y", "N", "Y", operator.itemgetter(1))
        return d.map("f", "X", "Y", f).relate("x·f", "y").compile()

    f, g = nn.Linear(3, 2), nn.Linear(3, 2)
    one, two = linear_loss(f), linear_loss(g)
    first, second = (loss._program(loss.sources, keep=False)._straight for loss in (one, two))
    assert first is not None and second is not None
    assert first.__code__ is second.__code__ and first is not second
    assert torch.equal(one({"N": (x, y)}).total, ld.losses.mse(f(x), y))
    assert torch.equal(two({"N": (x, y)}).total, ld.losses.mse(g(x), y))
    assert not torch.equal(one({"N": (x, y)}).total, two({"N": (x, y)}).total)


def test_an_identity_edge_with_a_hook_is_called():
    calls: list[str] = []
    watched, plain = nn.Identity(), nn.Identity()
    watched.register_forward_hook(lambda m, i, o: calls.append("watched"))
    d = ld.Diagram().space("N", data=[torch.ones(2, 3)]).space("X").space("Y", loss=ld.losses.mse)
    d.map("w", "N", "X", watched).map("p", "X", "Y", plain).map("f", "N", "Y", nn.Linear(3, 3)).relate("f", "w·p")
    loss = d.compile()
    program = loss._program(loss.sources, keep=False)
    assert [op.prefix for op in program.operations] == [("f",), ("w",)]
    total, _ = loss()
    assert calls == ["watched"]
    assert torch.equal(total, ld.losses.mse(loss.maps["f"](torch.ones(2, 3)), torch.ones(2, 3)))


def test_a_direct_term_is_the_weighted_formula_and_a_failing_one_is_named(batch):
    loss = distillation(mlp(8), mlp(8), batch).compile().eval()
    program = loss._program(loss.sources, keep=False)
    # library losses reduce by the mean to a scalar: computed in the program's loop, weighted there
    assert [(direct is not None, weight) for _, direct, weight, *_ in program._term_ops] == [(True, 0.75), (True, 0.25)]
    total, terms = loss({"N": batch})
    assert all(torch.equal(terms[p.name], loss.term(p, a, b)) for p, a, b in loss.outputs({"N": batch}))
    with pytest.raises(MapError, match="cross_entropy"):
        loss({"N": ((batch[0][0], batch[0][1]), torch.zeros(3, dtype=torch.long))})


def test_frozen_work_runs_first_and_its_transients_never_meet_the_kept_activations():
    calls: list[str] = []

    def frozen(name):
        block = nn.Linear(4, 4)

        def hook(module, inputs, output):
            calls.append(name)

        block.register_forward_hook(hook)
        return block

    student = nn.Linear(4, 4)
    student.register_forward_hook(lambda m, i, o: calls.append("student"))
    d = ld.Diagram().space("N", data=[torch.randn(3, 4)]).space("X").space("H").space("L", loss=ld.losses.mse)
    d.map("x", "N", "X", lambda b: b).map("student", "X", "L", student)
    d.map("t1", "X", "H", frozen("t1"), trainable=False).map("t2", "H", "L", frozen("t2"), trainable=False)
    d.relate("x·student", "x·t1·t2")
    loss = d.compile()
    loss()
    assert calls == ["t1", "t2", "student"]
    calls.clear()
    loss.outputs()  # the error-naming path evaluates in the same order
    assert calls == ["t1", "t2", "student"]


def test_wrapped_maps_are_called_through_their_wrappers_after_wrap(batch):
    calls = []

    class Wrapper(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            calls.append(type(self.module).__name__)
            return self.module(x)

    loss = distillation(mlp(8), mlp(8), batch).compile()
    loss({"N": batch})
    assert calls == []
    loss.wrap(Wrapper)
    loss({"N": batch})
    assert calls == ["Sequential", "Identity", "Identity", "Identity"]  # student, hard, soft, and soft after teacher


def test_a_program_given_a_prefix_computes_neither_it_nor_what_only_it_needs(batch):
    torch.manual_seed(0)
    loss = distillation(mlp(16), mlp(8), batch).compile()
    full = loss._program(loss.sources, keep=False)
    given = loss._program(loss.sources, keep=False, given=(("N", ("x", "teacher")),))
    assert ("x", "teacher") in [op.prefix for op in full.operations]
    # x stays (the student reads it); x·teacher comes in a slot after the batch
    assert ("x", "teacher") not in [op.prefix for op in given.operations]
    assert ("x",) in [op.prefix for op in given.operations]
    with torch.no_grad():
        teacher = loss.maps["teacher"](batch[0][0])
    torch.manual_seed(1)
    expected, _, _ = full.run([batch], torch.no_grad)
    torch.manual_seed(1)
    found, _, _ = given.run([batch, teacher], torch.no_grad)
    assert all(torch.equal(a, b) for a, b in zip(expected, found))
    only = loss._program(loss.sources, keep=False, given=(("N", ("x",)), ("N", ("x", "teacher"))))
    assert ("x",) not in [op.prefix for op in only.operations]


def test_a_dropped_compiled_loss_frees_its_program_without_the_garbage_collector():
    # The straight-line program holds the maps it calls; were it in a reference cycle, they would live
    # until the collector runs (a DDP wrapper destroyed at exit that way can deadlock).
    import gc
    import weakref

    import learning_diagrams as ld

    d = (
        ld.Diagram()
        .space("N", data=[(torch.ones(4, 2), torch.zeros(4, 1))])
        .space("X")
        .space("Y", loss=ld.losses.mse)
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("f", "X", "Y", torch.nn.Linear(2, 1))
        .relate("x·f", "y")
    )
    gc.disable()
    try:
        loss = d.compile()
        loss({"N": (torch.ones(4, 2), torch.zeros(4, 1))}).total.backward()
        (program,) = loss._programs.values()
        assert program._straight is not None
        straight = weakref.ref(program._straight)
        del loss, program
        assert straight() is None
    finally:
        gc.enable()
