"""Samplers: episodes from environments."""

from trajkit.samplers.epi_sampler import EpiSampler, WorkerError

__all__ = ["EpiSampler", "WorkerError"]
