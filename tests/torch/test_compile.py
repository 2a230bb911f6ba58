import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld


def distillation(teacher, student, batch, temperature=2.0):
    """The paper's Figure 1: student and teacher logits compared on labels and soft targets."""
    return (
        ld.Diagram()
        .space("N", data=[batch])
        .space("X")
        .space("L")
        .space("Y", loss=ld.losses.cross_entropy)
        .space("G", loss=ld.losses.KLDivergence(temperature=temperature))
        .map("x", "N", "X", lambda b: b[0])
        .map("y", "N", "Y", lambda b: b[1])
        .map("teacher", "X", "L", teacher, trainable=False)
        .map("student", "X", "L", student)
        .map("hard", "L", "Y", nn.Identity())
        .map("soft", "L", "G", nn.Identity())
        .relate("x·student·hard", "y", weight=0.75)
        .relate("x·student·soft", "x·teacher·soft", weight=0.25)
    )


def hand_written_distillation(teacher, student, images, labels, T=2.0):
    """The official PyTorch tutorial's train_knowledge_distillation loss, written out."""
    with torch.no_grad():
        teacher_logits = teacher(images)
    student_logits = student(images)
    soft_targets = F.softmax(teacher_logits / T, dim=-1)
    soft_prob = F.log_softmax(student_logits / T, dim=-1)
    soft_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)
    label_loss = F.cross_entropy(student_logits, labels)
    return 0.25 * soft_loss + 0.75 * label_loss


def mlp(hidden):
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


@pytest.fixture
def digits_batch():
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.data[:128], dtype=torch.float32) / 16
    labels = torch.tensor(data.target[:128])
    return images, labels


def test_distillation_diagram_equals_hand_written_loss_and_gradients(digits_batch):
    torch.manual_seed(0)
    teacher, student = mlp(64), mlp(16)
    twin = mlp(16)
    twin.load_state_dict(student.state_dict())
    loss = distillation(teacher, student, digits_batch).compile()
    total, terms = loss(N=digits_batch)
    expected = hand_written_distillation(teacher, twin, *digits_batch)
    assert list(terms) == ["x·student·hard ≤ y", "x·student·soft ≤ x·teacher·soft"]
    assert torch.allclose(total, expected, atol=1e-6)
    total.backward()
    expected.backward()
    for p, q in zip(student.parameters(), twin.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    assert all(p.grad is None for p in teacher.parameters())


def test_parameters_are_exactly_the_trainable_maps_parameters(digits_batch):
    teacher, student = mlp(32), mlp(8)
    loss = distillation(teacher, student, digits_batch).compile()
    assert {id(p) for p in loss.parameters()} == {id(p) for p in student.parameters()}
    assert all(k.startswith("maps.") for k in loss.state_dict())
    assert any(k.startswith("maps.teacher.") for k in loss.state_dict())  # frozen maps still saved


def test_frozen_maps_stay_in_eval_mode_and_run_without_autograd(digits_batch):
    teacher, student = nn.Sequential(mlp(32), nn.Dropout(0.5)), mlp(8)
    grad_enabled = []
    teacher.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    loss = distillation(teacher, student, digits_batch).compile().train()
    assert not teacher.training and student.training
    assert not any(p.requires_grad for p in teacher.parameters())
    loss(N=digits_batch)
    assert grad_enabled == [False]
    loss.eval().train()
    assert not teacher.training


def test_gradients_flow_through_a_frozen_map_after_a_trainable_one():
    encoder, decoder = nn.Linear(4, 2), nn.Linear(2, 4)
    d = (
        ld.Diagram()
        .space("N", data=torch.randn(8, 4))
        .space("X", loss=ld.losses.mse)
        .space("Z")
        .map("x", "N", "X", nn.Identity())
        .map("enc", "X", "Z", encoder)
        .map("dec", "Z", "X", decoder, trainable=False)
        .relate("enc·dec", "id(X)")
    )
    total, terms = d.compile()()
    assert list(terms) == ["x·enc·dec ≤ x"]
    total.backward()
    assert encoder.weight.grad is not None and decoder.weight.grad is None


class Counting(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, x):
        self.calls += 1
        return self.module(x)


def test_a_backbone_shared_by_fifty_heads_runs_once_per_batch():
    images, labels = torch.randn(16, 8), torch.randint(3, (16,))
    backbone, read_x = Counting(nn.Linear(8, 5)), Counting(nn.Identity())
    d = ld.Diagram().space("N", data=[(images, labels)]).space("X").space("F")
    d.map("x", "N", "X", lambda b: read_x(b[0])).map("backbone", "X", "F", backbone)
    heads = [Counting(nn.Linear(5, 3)) for _ in range(50)]
    for i, head in enumerate(heads):
        d.space(f"Y{i}", loss=ld.losses.cross_entropy)
        d.map(f"y{i}", "N", f"Y{i}", lambda b: b[1]).map(f"head{i}", "F", f"Y{i}", head)
        d.relate(f"x·backbone·head{i}", f"y{i}")
    loss = d.compile()
    total, terms = loss()
    assert len(terms) == 50
    assert (backbone.calls, read_x.calls) == (1, 1)
    assert all(head.calls == 1 for head in heads)
    loss()
    assert backbone.calls == 2


def test_without_relations_every_parallel_pair_compiles_in_enumeration_order():
    d = (
        ld.Diagram()
        .space("N", data=torch.ones(3, 2))
        .space("Y", loss=ld.losses.mse)
        .map("c", "N", "Y", nn.Linear(2, 2))
        .map("a", "N", "Y", nn.Linear(2, 2))
        .map("b", "N", "Y", nn.Linear(2, 2))
    )
    assert [p.name for p in d.parallel_pairs()] == ["c ≤ a", "c ≤ b", "a ≤ b"]
    assert [(p.first, p.second) for p in d.parallel_pairs()] == [(("c",), ("a",)), (("c",), ("b",)), (("a",), ("b",))]


def test_relation_orients_the_loss_arguments():
    seen = []

    def spy(a, b):
        seen.append((a.item(), b.item()))
        return (a - b).abs().sum()

    d = (
        ld.Diagram()
        .space("N", data=torch.tensor([1.0]))
        .space("Y", loss=spy)
        .map("prediction", "N", "Y", lambda x: x * 2)
        .map("target", "N", "Y", lambda x: x * 3)
        .relate("target", "prediction")
    )
    pair = d.parallel_pairs()[0]
    assert (pair.source, pair.target, pair.first, pair.second) == ("N", "Y", ("target",), ("prediction",))
    d.compile()()
    assert seen == [(3.0, 2.0)]


def test_weights_from_relate_and_from_compile_scale_terms():
    d = (
        ld.Diagram()
        .space("N", data=torch.tensor([1.0]))
        .space("Y", loss=ld.losses.l1)
        .map("f", "N", "Y", lambda x: x)
        .map("g", "N", "Y", lambda x: x + 2)
        .relate("f", "g", weight=0.5)
    )
    assert d.compile()().total.item() == 1.0
    assert d.compile(weights={"f ≤ g": 3.0})().total.item() == 6.0


def test_batches_are_drawn_from_each_source_in_turn_and_can_be_given():
    batches = [torch.tensor([1.0]), torch.tensor([2.0])]
    d = (
        ld.Diagram()
        .space("N", data=batches)
        .space("Y", loss=ld.losses.l1)
        .map("f", "N", "Y", lambda x: x)
        .map("zero", "N", "Y", lambda x: 0 * x)
    )
    loss = d.compile()
    assert [loss().total.item() for _ in range(3)] == [1.0, 2.0, 1.0]
    assert loss({"N": torch.tensor([5.0])}).total.item() == 5.0
    assert loss(N=torch.tensor([7.0])).total.item() == 7.0


def test_any_torch_optimiser_trains_the_compiled_loss(digits_batch):
    torch.manual_seed(0)
    loss = distillation(mlp(32), mlp(16), digits_batch).compile()
    optimiser = torch.optim.Adam(loss.parameters(), lr=1e-2)
    first = loss().total.item()
    for _ in range(30):
        optimiser.zero_grad()
        loss().total.backward()
        optimiser.step()
    assert loss().total.item() < 0.5 * first


def test_compiled_loss_is_a_snapshot_of_the_diagram():
    d = (
        ld.Diagram()
        .space("N", data=torch.tensor([1.0]))
        .space("Y", loss=ld.losses.l1)
        .map("f", "N", "Y", lambda x: x)
        .map("g", "N", "Y", lambda x: x + 2)
    )
    loss = d.compile()
    d.maps["g"].fn = lambda x: x + 10
    assert loss().total.item() == 2.0
    assert d.compile()().total.item() == 10.0


def test_repr_lists_terms_with_their_weights_and_losses(digits_batch):
    text = repr(distillation(mlp(8), mlp(8), digits_batch).compile())
    assert "0.75 * cross_entropy[x·student·hard ≤ y]" in text
    assert "0.25 * kl_div(T=2.0)[x·student·soft ≤ x·teacher·soft]" in text


def test_unfreezing_and_compiling_again_trains_the_map_again(digits_batch):
    teacher, student = mlp(16), mlp(8)
    teacher[0].bias.requires_grad_(False)  # the user's own choice, kept across freeze and unfreeze
    d = distillation(teacher, student, digits_batch)
    d.compile()
    assert not any(p.requires_grad for p in teacher.parameters())
    d.unfreeze("teacher")
    loss = d.compile()
    assert not teacher[0].bias.requires_grad
    assert {n for n, p in teacher.named_parameters() if p.requires_grad} == {"0.weight", "2.weight", "2.bias"}
    assert {id(p) for p in teacher.parameters()} <= {id(p) for p in loss.parameters()}
    loss(N=digits_batch).total.backward()
    assert teacher[0].weight.grad is not None


def test_a_copied_compiled_loss_still_leaves_frozen_parameters_out(digits_batch):
    import copy

    twin = copy.deepcopy(distillation(mlp(16), mlp(8), digits_batch).compile())  # as ddp_spawn does
    assert {id(p) for p in twin.parameters()} == {id(p) for p in twin.maps["student"].parameters()}


def test_a_source_given_none_has_its_pairs_skipped():
    d = (
        ld.Diagram()
        .space("N", data=torch.tensor([1.0]))
        .space("M", data=torch.tensor([2.0]))
        .space("Y", loss=ld.losses.l1)
        .space("Z", loss=ld.losses.l1)
        .map("f", "N", "Y", lambda x: x)
        .map("g", "N", "Y", lambda x: 0 * x)
        .map("h", "M", "Z", lambda x: x)
        .map("k", "M", "Z", lambda x: 0 * x)
    )
    loss = d.compile()
    assert list(loss(M=None).terms) == ["f ≤ g"]
    assert list(loss().terms) == ["f ≤ g", "h ≤ k"]
    with pytest.raises(ld.errors.NoBatchError, match=r"no source vertex has a batch in this call \(sources: N, M\)"):
        loss(N=None, M=None)


def test_a_map_with_training_false_trains_in_eval_mode():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    d = (
        ld.Diagram()
        .space("N", data=torch.randn(8, 2))
        .space("Y", loss=ld.losses.mse)
        .map("f", "N", "Y", net, training=False)
        .map("g", "N", "Y", nn.Identity())
        .relate("f", "g")
    )
    loss = d.compile().train()
    before = net[1].running_mean.clone()
    loss().total.backward()
    assert not net.training and torch.equal(net[1].running_mean, before)
    assert net[0].weight.grad is not None and net[0].weight in set(loss.parameters())
