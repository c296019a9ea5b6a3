"""Shared pytest set-up for the default test tier.

The test machines are small and shared, so torch runs single-threaded in the test
process (sampler workers already default to one thread each).
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: tiny tensors gain nothing from more, and cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
