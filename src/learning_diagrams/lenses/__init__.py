"""Parametric lenses: the update side of learning, as composable parts (Cruttwell et al.).

See :mod:`.lens` (Lens), :mod:`.para` (Para), :mod:`.derivative` (reverse derivatives).
"""

from .derivative import R, by_hand, para, para_derivative, reverse_derivative
from .lens import Lens, same, tensor_add, tensor_zero
from .para import Para

__all__ = ["Lens", "Para", "R", "reverse_derivative", "para", "para_derivative", "by_hand", "same", "tensor_add", "tensor_zero"]
