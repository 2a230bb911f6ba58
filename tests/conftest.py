import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread for the test, restored after: the tensors are tiny and the cores shared,
    so thread wake-ups would cost more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the JAX tests (and the JAX back end's doctests) last.

    JAX starts threads when it first computes, and a process forked after that (a
    ``DataLoader``'s workers, in the PyTorch tests) can deadlock, as JAX warns: the
    tests that fork run before any JAX computation. The order is otherwise kept.
    """
    items.sort(key=lambda item: "jax" in item.path.parts)
