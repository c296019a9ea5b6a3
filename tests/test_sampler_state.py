"""``EpiSampler.check_state_dict``: a state that does not fit is refused before anything changes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sampler_envs import SleepyEnv

import trajkit as tk


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        set(x) == set(y) and all(np.array_equal(np.asarray(x[k]), np.asarray(y[k])) for k in x)
        for x, y in zip(a, b, strict=True)
    )


def _pair(num_parallel: int = 1, num_envs: int = 1) -> tuple[tk.EpiSampler, tk.EpiSampler, tk.RandomPol]:
    """Two identical samplers, both one sample in (so every RNG, the action generator too, exists)."""
    env = SleepyEnv(length=6)
    pol = tk.RandomPol(env.observation_space, env.action_space)
    made = [
        tk.EpiSampler(SleepyEnv(length=6), pol, num_parallel=num_parallel, seed=3, num_envs_per_worker=num_envs)
        for _ in range(2)
    ]
    for s in made:
        s.sample(pol, max_steps=9)
    return made[0], made[1], pol


def _corruptions(state: dict) -> dict[str, tuple[dict, str]]:
    """Named bad variants of a good ``state`` and the words their error must contain."""
    out: dict[str, tuple[dict, str]] = {}

    def variant(name: str, match: str):  # noqa: ANN202 - a tiny decorator
        def put(edit):  # noqa: ANN001, ANN202
            bad = copy.deepcopy(state)
            edit(bad)
            out[name] = (bad, match)

        return put

    variant("other_num_envs", "num_envs_per_worker=3")(lambda s: s.update(num_envs_per_worker=3))
    variant("other_num_parallel", "num_parallel=5")(lambda s: s.update(num_parallel=5))
    variant("missing_key", r"missing keys \['num_envs_per_worker'\]")(lambda s: s.pop("num_envs_per_worker"))
    variant("extra_key", r"unexpected keys \['epoch'\]")(lambda s: s.update(epoch=3))
    variant("seed_type", r"\['seed'\] must be an int")(lambda s: s.update(seed="3"))
    variant("short_env_rngs", r"\['env_rngs'\] is for 0 envs")(lambda s: s["workers"][-1].update(env_rngs=[]))
    variant("bad_env_rng", r"\['env_rngs'\]\[0\] is not a numpy")(
        lambda s: s["workers"][-1]["env_rngs"].__setitem__(0, 7)
    )
    variant("bad_gen", r"\['gens'\]\['cpu'\] cannot be restored")(
        lambda s: s["workers"][-1]["gens"].update(cpu=torch.zeros(3, dtype=torch.uint8))
    )
    variant("gen_type", r"\['gens'\] must map a device name")(lambda s: s["workers"][-1]["gens"].update(cpu=[1, 2]))
    variant("seed_value", r"\['env_seeds'\]\[0\] must be an int or None")(
        lambda s: s["workers"][-1]["env_seeds"].__setitem__(0, 1.5)
    )
    variant("not_a_dict", "must be a dict")(lambda s: s["workers"].__setitem__(-1, "oops"))
    return out


TEMPLATE = {
    "num_parallel": 1,
    "num_envs_per_worker": 1,
    "seed": 0,
    "workers": [{"env_seeds": [None], "env_rngs": [None], "gens": {}}],
}
CASES = sorted(_corruptions(TEMPLATE))
#: the cases the sampler already refused before check_state_dict existed, without changing anything
REFUSED_BEFORE = {"other_num_envs", "other_num_parallel"}


def test_check_state_dict_names_every_mismatch_and_changes_nothing() -> None:
    a, ref, pol = _pair()
    with a, ref:
        a.check_state_dict(a.state_dict())  # a good state passes
        for case, (bad, match) in _corruptions(a.state_dict()).items():
            with pytest.raises(ValueError, match=match):
                a.check_state_dict(bad)
            assert case and _same(a.sample(pol, max_steps=4), ref.sample(pol, max_steps=4))


@pytest.mark.parametrize("case", [c for c in CASES if c not in REFUSED_BEFORE])
def test_a_state_that_does_not_fit_is_refused_by_load_and_the_sampler_is_unchanged(case: str) -> None:
    a, ref, pol = _pair()
    with a, ref:
        bad, match = _corruptions(a.state_dict())[case]
        with pytest.raises(ValueError, match=match):
            a.load_state_dict(bad)
        assert _same(a.sample(pol, max_steps=9), ref.sample(pol, max_steps=9)), "a failed load changed the sampler"


def test_a_vectorized_state_restores_into_a_vectorized_sampler_only() -> None:
    a, ref, pol = _pair(num_envs=2)
    with a, ref:
        state = a.state_dict()
        a.check_state_dict(state)
        with tk.EpiSampler(SleepyEnv(), pol, seed=3) as single:
            with pytest.raises(ValueError, match="num_envs_per_worker=2, this one has 1"):
                single.check_state_dict(state)
            lied = {**copy.deepcopy(state), "num_envs_per_worker": 1}  # the header says 1, the workers hold 2
            with pytest.raises(ValueError, match=r"\['env_seeds'\] is for 2 envs"):
                single.load_state_dict(lied)
