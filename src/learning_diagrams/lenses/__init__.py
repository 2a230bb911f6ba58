"""Parametric lenses: the update side of learning, as composable parts.

After Cruttwell, Gavranović, Ghani, Wilson and Zanasi, "Deep learning with
parametric lenses". A model, a loss map, a learning rate and an optimiser are
each a (parametric) lens; a learner is their composite.

* :mod:`.lens` — :class:`Lens`, with ``>>`` and ``@``, and the structural lenses;
* :mod:`.para` — :class:`Para`, parametric lenses with named parameters, and
  reparametrisation;
* :mod:`.derivative` — reverse derivatives of smooth maps and modules, via ``torch.func`` semantics
  on plain autograd;
* :mod:`.parts` — layers, loss maps with the label as parameter, learning rates;
* :mod:`.optim` — optimisers as stateful reparametrisations (GD, momentum,
  Nesterov in torch's form and in the paper's, AdaGrad, Adam, RMSprop), each
  stepping every tensor at once with ``torch._foreach_*``;
* :mod:`.learner` — supervised learning, deep dreaming, a Wasserstein GAN;
* :mod:`.bridges` — a lens optimiser as a ``torch.optim`` optimiser, a compiled
  diagram as a lens loss map;
* :mod:`.boolean` — a reverse-derivative engine over Z2 and Boolean learners.
"""

from . import boolean, bridges, learner, optim, parts
from .boolean import Circuit, rda, z2_add, z2_zero
from .bridges import LensOptimizer, diagram_learner, diagram_loss, load_params
from .derivative import R, by_hand, from_module, para_derivative, reverse_derivative
from .learner import WGAN, Dreamed, Learner, Trained, dream, input_as_parameter, supervised, train, wgan
from .lens import Assign, Lens, same, tensor_add, tensor_zero
from .optim import Optimiser, adagrad, adam, gradient_descent, lookahead_nesterov, momentum, nesterov, rmsprop, sgd
from .para import Para

__all__ = [
    "Lens",
    "Assign",
    "Para",
    "R",
    "reverse_derivative",
    "from_module",
    "para_derivative",
    "by_hand",
    "same",
    "tensor_add",
    "tensor_zero",
    "parts",
    "optim",
    "learner",
    "bridges",
    "LensOptimizer",
    "diagram_learner",
    "diagram_loss",
    "load_params",
    "Learner",
    "Trained",
    "Dreamed",
    "WGAN",
    "supervised",
    "train",
    "dream",
    "input_as_parameter",
    "wgan",
    "Optimiser",
    "sgd",
    "gradient_descent",
    "momentum",
    "nesterov",
    "lookahead_nesterov",
    "adagrad",
    "adam",
    "rmsprop",
    "boolean",
    "Circuit",
    "rda",
    "z2_add",
    "z2_zero",
]
