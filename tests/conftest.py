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
