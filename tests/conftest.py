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


@pytest.fixture
def local_ray():
    """A fresh two-CPU local Ray for one test, shut down after it.

    A Ray the sampler started on its own in an earlier test (``ray.init`` is called
    by the ray backend when Ray is not initialized) is shut down first, so tests do
    not depend on their order.
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
