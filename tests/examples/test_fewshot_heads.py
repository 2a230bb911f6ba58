"""The few-shot meta-test three ways: the hand-written per-episode loop, ld.fit glued (fused or not), the L2 rule."""

import pytest
import torch
from torch import nn

from learning_diagrams.examples import fewshot

EPISODES, STEPS = 6, 40


@pytest.fixture(scope="module")
def setting():
    """A few digits episodes of each shot and a small random-init backbone, fixed by the seed."""
    classes = fewshot.load_classes("digits")
    episodes = {k: fewshot.sample_episodes(classes, "test", EPISODES, shots=k) for k in (1, 5)}
    torch.manual_seed(0)
    return episodes, fewshot.Conv4(8).requires_grad_(False)


@pytest.mark.parametrize("shots", [1, 5])
def test_the_per_episode_loop_and_the_glued_fit_give_each_episode_the_same_accuracy(setting, shots):
    episodes, backbone = setting
    options = dict(steps=STEPS, device="cpu")
    loop = fewshot.loop_heads(episodes[shots], backbone, **options)
    glued = fewshot.fit_heads(episodes[shots], backbone, glue=4, **options)  # two diagrams: 4 and 2 episodes
    assert len(loop) == len(glued) == EPISODES
    assert loop == pytest.approx(glued, abs=1.0)  # the same objective, optimiser and schedule
    assert max(loop) > 20.0  # chance is 20%: the heads learnt something


@pytest.mark.parametrize("shots", [1, 5])
def test_fusing_the_glued_heads_changes_no_accuracy(setting, shots):
    episodes, backbone = setting
    options = dict(glue=EPISODES, steps=STEPS, device="cpu")
    unfused = fewshot.fit_heads(episodes[shots], backbone, fuse=False, **options)
    fused = fewshot.fit_heads(episodes[shots], backbone, fuse=True, **options)
    assert fused == pytest.approx(unfused, abs=1e-3)


def test_the_l2_penalty_goes_on_weights_by_name_even_when_stacked():
    weight, bias = nn.Parameter(torch.ones(3, 5, 8)), nn.Parameter(torch.ones(3, 5))  # 3 heads stacked: both dim > 1
    groups = [{"params": [weight, bias], "param_names": ["h_0.1.weight", "h_0.1.bias"], "map": "h_0"}]
    optimiser = fewshot._adam_with_l2(0.1, 0.25)(groups)
    decay = {id(p): g["weight_decay"] for g in optimiser.param_groups for p in g["params"]}
    assert decay == {id(weight): 0.25, id(bias): 0.0}


def test_without_names_the_l2_penalty_goes_by_rank_and_heads_share_two_groups():
    heads = [nn.Linear(8, 5) for _ in range(4)]
    groups = [{"params": list(h.parameters()), "map": f"h_{i}", "lr": 0.5} for i, h in enumerate(heads)]
    optimiser = fewshot._adam_with_l2(0.1, 0.25)(groups)
    assert [(len(g["params"]), g["weight_decay"], g["lr"]) for g in optimiser.param_groups] == [
        (4, 0.25, 0.5),
        (4, 0.0, 0.5),
    ]
    assert all(p.dim() == 2 for p in optimiser.param_groups[0]["params"])
