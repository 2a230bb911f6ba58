"""A jitted training step of a diagram on JAX against the same step written by hand, and against PyTorch.

The case is ``compiled_loss.py``'s distillation (the paper's Figure 1): a 64→512→10
teacher, frozen, and a 64→64→10 student, batch 128, Adam (optax), the loss
``0.75·CE + 0.25·T²·KL`` at ``T = 2``.

* ours: ``ld.jax.compile(diagram)``, its ``loss(params, batches)`` under
  ``jax.value_and_grad`` with the optax update, the whole step under ``jax.jit``;
* hand: the same step as a JAX user writes it: the two models called, the teacher
  under ``jax.lax.stop_gradient``, the two terms written out, jitted the same way;
* PyTorch: the same diagram compiled on PyTorch (eager), a step of ``compiled_loss.py``.

Both JAX sides start from the same weights; their losses after the timed steps are
printed beside each other. Each step blocks until its result is ready
(``block_until_ready``). Sides alternate step by step; the ratio is that of the medians.

Run: ``.venv/bin/python bench/jax_step.py [--quick] [--steps N]``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from sidebyside import T, alternate, distillation_diagram, machine_line, median_ratio
from torch import nn

import learning_diagrams as ld

BATCH = 128


class MLP(eqx.Module):
    """``Linear, ReLU, Linear`` over a batch, its weights laid out as torch's."""

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(x @ self.w1.T + self.b1) @ self.w2.T + self.b2

    @classmethod
    def like(cls, module: nn.Sequential) -> MLP:
        first, _, second = module
        return cls(*(jnp.asarray(p.detach().numpy()) for p in (first.weight, first.bias, second.weight, second.bias)))


def hand_loss(student: MLP, teacher: MLP, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """The distillation loss as a JAX user writes it (the tutorial's formula)."""
    x, labels = batch
    teacher_logits = jax.lax.stop_gradient(teacher(x))
    logits = student(x)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    hard = -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=-1))
    soft_t = jax.nn.softmax(teacher_logits / T, axis=-1)
    kl = jnp.sum(soft_t * (jnp.log(soft_t) - jax.nn.log_softmax(logits / T, axis=-1))) / x.shape[0] * T**2
    return 0.75 * hard + 0.25 * kl


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps: a few seconds")
    parser.add_argument("--steps", type=int, default=None, help="steps per side (default 2000, quick 200)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps = args.steps or (200 if args.quick else 2000)
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
    student = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    x, y = torch.randn(BATCH, 64), torch.randint(10, (BATCH,))
    batch = (jnp.asarray(x.numpy()), jnp.asarray(y.numpy()))
    j_teacher, j_student = MLP.like(teacher), MLP.like(student)
    optimiser = optax.adam(1e-3)

    loss = ld.jax.compile(distillation_diagram(j_teacher, j_student, [batch]))

    @jax.jit
    def ours(params, state, batches):
        value, grads = jax.value_and_grad(lambda p: loss(p, batches).total)(params)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    @jax.jit
    def hand(student, state, batch):
        value, grads = jax.value_and_grad(hand_loss)(student, j_teacher, batch)
        updates, state = optimiser.update(grads, state, student)
        return optax.apply_updates(student, updates), state, value

    sides = {
        "ours": [loss.params, optimiser.init(loss.params), None],
        "hand": [j_student, optimiser.init(j_student), None],
    }

    def run_ours() -> None:
        s = sides["ours"]
        s[0], s[1], s[2] = ours(s[0], s[1], {"N": batch})
        jax.block_until_ready(s[2])

    def run_hand() -> None:
        s = sides["hand"]
        s[0], s[1], s[2] = hand(s[0], s[1], batch)
        jax.block_until_ready(s[2])

    compiled = distillation_diagram(teacher, student, (x, y)).compile()
    torch_optimiser = torch.optim.Adam(compiled.parameters(), lr=1e-3)

    def run_torch() -> None:
        torch_optimiser.zero_grad(set_to_none=True)
        compiled({"N": (x, y)}).total.backward()
        torch_optimiser.step()

    print(machine_line(f"jax {jax.__version__} on {jax.devices()[0].platform}; batch {BATCH}; median of {steps} steps"))
    print(f"{'case':<40} {'ours (ms)':>10} {'other (ms)':>10} {'ratio':>7}")
    a, b, ratio = median_ratio(alternate(run_ours, run_hand, rounds=steps, calls=1, warmup=20))
    print(f"{'jitted diagram step / hand-written':<40} {a * 1e3:>10.3f} {b * 1e3:>10.3f} {ratio:>7.3f}")
    print(f"losses after the timed steps: ours {float(sides['ours'][2]):.6f}, hand {float(sides['hand'][2]):.6f}")
    a, b, ratio = median_ratio(alternate(run_ours, run_torch, rounds=max(steps // 2, 50), calls=1, warmup=20))
    print(f"{'JAX (jitted) / PyTorch (eager) step':<40} {a * 1e3:>10.3f} {b * 1e3:>10.3f} {ratio:>7.3f}")
    assert np.isfinite(float(sides["ours"][2]))


if __name__ == "__main__":
    main()
