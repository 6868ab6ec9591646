"""Shared fixtures."""
import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Training-step tests run far faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
