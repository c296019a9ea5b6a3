"""How sampler workers (and vectorized rollouts) get their own copies of the user's env."""

from __future__ import annotations

from typing import Any

import cloudpickle
import gymnasium as gym

from trajkit.envs.gym_env import GymEnv, import_registering_module


def shippable_env(env: Any) -> Any:
    """A picklable recipe from which a worker (or a vectorized rollout) builds its env copies.

    A GymEnv made from an id is re-made from that id and its kwargs. Any other env object
    is cloudpickled (an exact copy, wrappers included) and unpickled once per copy; if it
    does not pickle (Bullet envs hold a physics connection) but ``gymnasium.make`` can
    rebuild it from its spec, wrappers included, it is re-made from the spec. Ids and
    factories are shipped as they are.
    """
    make_args = getattr(env, "make_args", None)
    if isinstance(env, GymEnv) and make_args is not None:
        return _SpecFactory(make_args[0], dict(make_args[1]))
    if not (isinstance(env, gym.Env) or (hasattr(env, "step") and hasattr(env, "reset"))):
        return env
    try:
        return _PickledEnvFactory(cloudpickle.dumps(env))
    except Exception as e:
        spec = getattr(env, "spec", None)
        if spec is None or not spec.id or any(w.kwargs is None for w in spec.additional_wrappers):
            raise TypeError(
                f"cannot ship {env!r} to sampler workers: it does not pickle ({type(e).__name__}: {e}) and "
                "gymnasium cannot re-make it from its spec; pass an env id or a zero-argument factory"
            ) from e
        return _GymSpecFactory(spec)


class _SpecFactory:
    """Re-creates a registered env in a worker from its id and make() kwargs."""

    def __init__(self, env_id: str, kwargs: dict[str, Any]) -> None:
        self.env_id, self.kwargs = env_id, kwargs

    def __call__(self) -> GymEnv:
        return GymEnv(self.env_id, **self.kwargs)


class _GymSpecFactory:
    """Re-makes an env with ``gymnasium.make(spec)`` (registered id, kwargs and recorded wrappers)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def __call__(self) -> GymEnv:
        import_registering_module(self.spec.id)
        return GymEnv(gym.make(self.spec))


class _PickledEnvFactory:
    """Builds independent copies of one env object by unpickling it once per copy."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __call__(self) -> Any:
        return cloudpickle.loads(self.data)
