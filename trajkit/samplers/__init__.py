"""Samplers: episodes from environments."""

from trajkit.samplers._policy_checks import NonFiniteActionError
from trajkit.samplers._timeout import DEFAULT_TIMEOUT, SamplerTimeout
from trajkit.samplers.epi_sampler import EpiSampler, WorkerError

__all__ = ["DEFAULT_TIMEOUT", "EpiSampler", "NonFiniteActionError", "SamplerTimeout", "WorkerError"]
