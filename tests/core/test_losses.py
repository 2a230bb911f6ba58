"""Tests for learning_diagrams.losses: references, laws, flags, as_loss."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from learning_diagrams import losses
from learning_diagrams.core.errors import DiagramError, TypeMismatchError
from learning_diagrams.core.losses import KLDivergence, Loss, as_loss

ATOL = 1e-6


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _close(x: torch.Tensor, y: torch.Tensor, atol: float = ATOL) -> bool:
    return torch.allclose(x, y, rtol=0.0, atol=atol)


def tutorial_kd(student: torch.Tensor, teacher: torch.Tensor, T: float) -> torch.Tensor:
    """The soft-target loss of PyTorch's knowledge-distillation tutorial, verbatim."""
    soft_targets = torch.nn.functional.softmax(teacher / T, dim=-1)
    soft_prob = torch.nn.functional.log_softmax(student / T, dim=-1)
    return torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)


# --- references ---------------------------------------------------------------


def _inputs(name: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    if name in ("mse", "l1", "binary_cross_entropy_with_logits"):
        a, b = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
        if name == "binary_cross_entropy_with_logits":
            b = torch.rand(8, 5, generator=g)
        return a, b
    if name == "binary_cross_entropy":
        return torch.rand(8, 5, generator=g) * 0.98 + 0.01, torch.rand(8, 5, generator=g)
    raise AssertionError(name)


REFERENCES = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_functional_reference(name: str, seed: int) -> None:
    a, b = _inputs(name, seed)
    got = getattr(losses, name)(a, b)
    assert got.dim() == 0
    assert _close(got, REFERENCES[name](a, b))
    # and it is not trivially equal to something else (e.g. a sum instead of a mean)
    assert not _close(got, REFERENCES[name](a, b, reduction="sum"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_entropy_with_indices(seed: int) -> None:
    g = _gen(seed)
    logits = torch.randn(8, 4, generator=g)
    labels = torch.randint(0, 4, (8,), generator=g)
    got = losses.cross_entropy(logits, labels)
    assert _close(got, F.cross_entropy(logits, labels))
    by_hand = -logits.log_softmax(-1)[torch.arange(8), labels].mean()
    assert _close(got, by_hand)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_entropy_with_probabilities(seed: int) -> None:
    g = _gen(seed)
    logits = torch.randn(8, 4, generator=g)
    probs = torch.rand(8, 4, generator=g).softmax(-1)
    got = losses.cross_entropy(logits, probs)
    assert _close(got, F.cross_entropy(logits, probs))
    by_hand = -(probs * logits.log_softmax(-1)).sum(-1).mean()
    assert _close(got, by_hand)


def test_cross_entropy_one_hot_probabilities_equal_indices() -> None:
    g = _gen(3)
    logits = torch.randn(6, 5, generator=g)
    labels = torch.randint(0, 5, (6,), generator=g)
    one_hot = F.one_hot(labels, 5).to(logits.dtype)
    assert _close(losses.cross_entropy(logits, labels), losses.cross_entropy(logits, one_hot))


def test_cross_entropy_with_extra_dimensions() -> None:
    # (N, C, d) logits and (N, d) indices: torch's class dimension is 1
    g = _gen(4)
    logits = torch.randn(3, 4, 7, generator=g)
    labels = torch.randint(0, 4, (3, 7), generator=g)
    assert _close(losses.cross_entropy(logits, labels), F.cross_entropy(logits, labels))


@pytest.mark.parametrize("T", [1.0, 2.0, 4.5, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_kl_div_matches_distillation_tutorial(T: float, seed: int) -> None:
    g = _gen(seed)
    student, teacher = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g) * 3
    got = KLDivergence(temperature=T)(student, teacher)
    assert _close(got, tutorial_kd(student, teacher, T))


def test_kl_div_module_instance_is_temperature_one() -> None:
    g = _gen(5)
    s, t = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    assert _close(losses.kl_div(s, t), tutorial_kd(s, t, 1.0))
    assert _close(
        losses.kl_div(s, t), F.kl_div(s.log_softmax(-1), t.log_softmax(-1), reduction="batchmean", log_target=True)
    )
    # temperature changes the value (the T**2 and the softening both matter)
    assert not _close(KLDivergence(temperature=3.0)(s, t), losses.kl_div(s, t), atol=1e-3)


def test_kl_div_is_numerically_safe() -> None:
    student = torch.zeros(2, 3, requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0, -float("inf")], [1e4, 0.0, -1e4]])
    # the tutorial's formula is NaN here; ours is finite, with finite gradients
    assert torch.isnan(tutorial_kd(student.detach(), teacher, 2.0))
    value = KLDivergence(temperature=2.0)(student, teacher)
    assert torch.isfinite(value)
    # row 0: KL([1/2, 1/2, 0] || uniform) = log(3/2); row 1: KL(one-hot || uniform) = log 3
    expected = (np.log(1.5) + np.log(3.0)) / 2 * 4.0
    assert abs(value.item() - expected) < 1e-5
    value.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    teacher_leaf = teacher.clone().requires_grad_(True)
    KLDivergence(temperature=2.0)(student.detach(), teacher_leaf).backward()
    assert torch.isfinite(teacher_leaf.grad).all()


def test_kl_div_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(2, 1\)"):
        losses.kl_div(torch.zeros(2, 3), torch.zeros(2, 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 2), (6,)])
def test_cosine_matches_cosine_embedding_loss(seed: int, shape: tuple[int, ...]) -> None:
    g = _gen(seed)
    a, b = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    got = losses.cosine(a, b)
    if len(shape) == 1:  # one unbatched vector
        reference = torch.nn.CosineEmbeddingLoss()(a, b, torch.tensor(1.0))
    else:
        batch = shape[0]
        reference = torch.nn.CosineEmbeddingLoss()(a.reshape(batch, -1), b.reshape(batch, -1), torch.ones(batch))
    assert _close(got, reference)


def test_cosine_rejects_mismatched_shapes_and_scalars() -> None:
    with pytest.raises(ValueError, match="same shape"):
        losses.cosine(torch.ones(2, 3), torch.ones(1, 3))
    with pytest.raises(ValueError, match="0-d"):
        losses.cosine(torch.tensor(1.0), torch.tensor(1.0))


# --- laws ---------------------------------------------------------------------

LAW_SETTINGS = settings(deadline=None, max_examples=60)

finite = st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False)
shapes = st.tuples(st.integers(1, 4), st.integers(1, 6))


@st.composite
def tensors(draw: st.DrawFn, shape: tuple[int, int] | None = None) -> torch.Tensor:
    if shape is None:
        shape = draw(shapes)
    return torch.from_numpy(draw(arrays(np.float64, shape, elements=finite)))


@st.composite
def pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    shape = draw(shapes)
    return draw(tensors(shape)), draw(tensors(shape))


@st.composite
def nonzero_rows(draw: st.DrawFn) -> torch.Tensor:
    x = draw(tensors())
    # cosine compares directions: it is a Lawvere metric on non-zero vectors
    row_norms = x.norm(dim=-1)
    assume(bool((row_norms > 1e-3).all()))
    return x


METRICS = {"mse": losses.mse, "l1": losses.l1, "kl_div": losses.kl_div}
SYMMETRIC = {"mse": losses.mse, "l1": losses.l1, "cosine": losses.cosine}


@pytest.mark.parametrize("name", sorted(METRICS))
@LAW_SETTINGS
@given(x=tensors())
def test_distance_to_itself_is_zero(name: str, x: torch.Tensor) -> None:
    assert abs(METRICS[name](x, x).item()) <= ATOL


@LAW_SETTINGS
@given(x=nonzero_rows())
def test_cosine_distance_to_itself_is_zero(x: torch.Tensor) -> None:
    assert abs(losses.cosine(x, x).item()) <= ATOL


@LAW_SETTINGS
@given(x=tensors(), T=st.floats(0.05, 20.0))
def test_kl_div_distance_to_itself_is_zero_at_any_temperature(x: torch.Tensor, T: float) -> None:
    assert abs(KLDivergence(temperature=T)(x, x).item()) <= ATOL


@pytest.mark.parametrize("name", sorted(SYMMETRIC))
@LAW_SETTINGS
@given(ab=pairs())
def test_symmetric_losses_are_symmetric(name: str, ab: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = ab
    d = SYMMETRIC[name]
    assert d.symmetric is True
    assert abs(d(a, b).item() - d(b, a).item()) <= ATOL


@LAW_SETTINGS
@given(ab=pairs())
def test_metrics_are_non_negative(ab: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = ab
    for d in (losses.mse, losses.l1, losses.cosine, losses.kl_div, KLDivergence(temperature=3.0)):
        assert d(a, b).item() >= -ATOL, d


def test_symmetry_flags() -> None:
    flags = {
        name: getattr(losses, name).symmetric for name in losses.__all__ if isinstance(getattr(losses, name), Loss)
    }
    assert flags == {
        "mse": True,
        "l1": True,
        "cosine": True,
        "cross_entropy": False,
        "kl_div": False,
        "binary_cross_entropy": False,
        "binary_cross_entropy_with_logits": False,
    }
    assert KLDivergence(temperature=5.0).symmetric is False


def test_kl_div_is_not_symmetric() -> None:
    a = torch.tensor([[0.0, 0.0, 0.0]])
    b = torch.tensor([[4.0, 0.0, 0.0]])
    for d in (losses.kl_div, KLDivergence(temperature=2.0)):
        assert abs(d(a, b).item() - d(b, a).item()) > 0.1, d
    # by hand at T = 1: KL(softmax(b) || uniform) vs KL(uniform || softmax(b))
    p, u = b.softmax(-1), torch.full((1, 3), 1 / 3)
    assert _close(losses.kl_div(a, b), (p * (p / u).log()).sum())
    assert _close(losses.kl_div(b, a), (u * (u / p).log()).sum())


def test_cross_entropy_is_not_symmetric() -> None:
    logits = torch.tensor([[0.0, 0.0]])
    probs = torch.tensor([[1.0, 0.0]])
    assert _close(losses.cross_entropy(logits, probs), torch.tensor(np.log(2.0), dtype=torch.float32))
    assert _close(losses.cross_entropy(probs, logits), torch.tensor(0.0))


# --- gradients ----------------------------------------------------------------


def _grad_case(name: str) -> tuple[Loss, torch.Tensor, torch.Tensor]:
    g = _gen(7)
    if name == "cross_entropy_indices":
        return losses.cross_entropy, torch.randn(5, 4, generator=g), torch.randint(0, 4, (5,), generator=g)
    if name == "cross_entropy":
        return losses.cross_entropy, torch.randn(5, 4, generator=g), torch.rand(5, 4, generator=g).softmax(-1)
    if name == "binary_cross_entropy":
        return losses.binary_cross_entropy, torch.rand(5, 4, generator=g) * 0.9 + 0.05, torch.rand(5, 4, generator=g)
    if name == "binary_cross_entropy_with_logits":
        return losses.binary_cross_entropy_with_logits, torch.randn(5, 4, generator=g), torch.rand(5, 4, generator=g)
    if name == "kl_div_T3":
        return KLDivergence(temperature=3.0), torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    return getattr(losses, name), torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)


@pytest.mark.parametrize(
    "name",
    [
        "mse",
        "l1",
        "cosine",
        "cross_entropy",
        "cross_entropy_indices",
        "kl_div",
        "kl_div_T3",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
    ],
)
def test_gradients_flow_to_the_prediction(name: str) -> None:
    d, prediction, target = _grad_case(name)
    prediction.requires_grad_(True)
    value = d(prediction, target)
    assert value.dim() == 0
    value.backward()
    assert prediction.grad is not None
    assert torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0
    # one gradient step on the prediction lowers the loss
    with torch.no_grad():
        stepped = prediction - 1e-2 * prediction.grad
        if d is losses.binary_cross_entropy:
            stepped = stepped.clamp(1e-4, 1 - 1e-4)
        assert d(stepped, target) < value


# --- Loss and as_loss -----------------------------------------------------------


def _sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).sum()


def test_loss_wraps_a_callable() -> None:
    d = Loss(_sq, symmetric=True)
    assert d.fn is _sq and d.symmetric is True and d.name == "_sq"
    assert d(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).item() == 5.0
    assert repr(d) == "Loss(_sq, symmetric=True)"
    assert Loss(_sq, symmetric=False, name="square").name == "square"


def test_loss_symmetric_is_keyword_only_and_required() -> None:
    with pytest.raises(TypeError):
        Loss(_sq)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Loss(_sq, True)  # type: ignore[misc]


def test_loss_rejects_bad_fields() -> None:
    with pytest.raises(TypeMismatchError, match=r"callable.*got 3 \(int\)"):
        Loss(3, symmetric=True)  # type: ignore[arg-type]
    with pytest.raises(TypeMismatchError, match=r"True or False, got 'yes' \(str\)"):
        Loss(_sq, symmetric="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeMismatchError, match=r"name=.*got 1"):
        Loss(_sq, symmetric=True, name=1)  # type: ignore[arg-type]


def test_loss_is_immutable_equal_and_picklable() -> None:
    d = Loss(_sq, symmetric=True)
    with pytest.raises(AttributeError, match="immutable"):
        d.symmetric = False  # type: ignore[misc]
    assert d == Loss(_sq, symmetric=True)
    assert d != Loss(_sq, symmetric=False)
    assert hash(d) == hash(Loss(_sq, symmetric=True))
    for original in (losses.mse, losses.kl_div, KLDivergence(temperature=2.5), d):
        for clone in (copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
            assert clone == original and type(clone) is type(original)
            assert repr(clone) == repr(original)
    x, y = torch.randn(3, 4, generator=_gen(8)), torch.randn(3, 4, generator=_gen(9))
    clone = pickle.loads(pickle.dumps(KLDivergence(temperature=2.5)))
    assert clone.temperature == 2.5
    assert _close(clone(x, y), tutorial_kd(x, y, 2.5))


def test_reprs_and_names() -> None:
    assert repr(losses.mse) == "Loss(mse, symmetric=True)"
    assert repr(losses.cross_entropy) == "Loss(cross_entropy, symmetric=False)"
    assert repr(losses.kl_div) == "KLDivergence(temperature=1.0)"
    assert losses.kl_div.name == "kl_div(T=1.0)"
    kd = KLDivergence(temperature=2)
    assert kd.temperature == 2.0 and isinstance(kd.temperature, float)
    assert kd.name == "kl_div(T=2.0)" and repr(kd) == "KLDivergence(temperature=2.0)"
    assert kd == KLDivergence(2.0) and kd != losses.kl_div


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_kl_temperature_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="positive and finite"):
        KLDivergence(temperature=bad)


@pytest.mark.parametrize("bad", ["2", True, None])
def test_kl_temperature_must_be_a_number(bad: object) -> None:
    with pytest.raises(TypeMismatchError, match="must be a number"):
        KLDivergence(temperature=bad)  # type: ignore[arg-type]


def test_as_loss_keeps_a_loss() -> None:
    assert as_loss(losses.mse) is losses.mse
    kd = KLDivergence(temperature=2.0)
    assert as_loss(kd) is kd


def test_as_loss_wraps_a_callable_as_asymmetric() -> None:
    d = as_loss(_sq)
    assert isinstance(d, Loss)
    assert d.fn is _sq and d.symmetric is False and d.name == "_sq"
    module = torch.nn.MSELoss()
    wrapped = as_loss(module)
    assert isinstance(wrapped, Loss) and wrapped.symmetric is False and wrapped.name == "MSELoss"
    a, b = torch.randn(3, generator=_gen(1)), torch.randn(3, generator=_gen(2))
    assert _close(wrapped(a, b), F.mse_loss(a, b))
    assert repr(as_loss(lambda a, b: (a - b).abs().sum())) == "Loss(<lambda>, symmetric=False)"


def test_as_loss_none() -> None:
    assert as_loss(None) is None


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (3, "got 3 (int)"),
        ("cosine", "got 'cosine' (str); did you mean learning_diagrams.losses.cosine?"),
        ("huber", "got 'huber' (str)"),
        ([1, 2], "got [1, 2] (list)"),
    ],
)
def test_as_loss_rejects_non_callables(bad: object, shown: str) -> None:
    with pytest.raises(TypeMismatchError) as info:
        as_loss(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError) and isinstance(info.value, DiagramError)
    message = str(info.value)
    assert message.startswith("a loss must be a Loss, a callable fn(prediction, target) or None")
    assert message.endswith(shown)


def test_as_loss_rejects_a_class() -> None:
    with pytest.raises(TypeMismatchError, match=r"got the class MSELoss; pass an instance, e\.g\. MSELoss\(\)"):
        as_loss(torch.nn.MSELoss)


def test_all_is_complete() -> None:
    assert sorted(losses.__all__) == sorted(
        [
            "Loss",
            "Formula",
            "KLDivergence",
            "REDUCTIONS",
            "check_reduction",
            "computed_by",
            "as_loss",
            "by_name",
            "is_library",
            "LIBRARY",
            "mse",
            "l1",
            "cross_entropy",
            "kl_div",
            "cosine",
            "binary_cross_entropy",
            "binary_cross_entropy_with_logits",
        ]
    )
    for name in losses.__all__:
        assert hasattr(losses, name), name
