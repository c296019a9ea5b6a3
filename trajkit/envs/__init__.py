"""Environment adapters and wrappers."""

from trajkit.envs.gym_env import GymEnv, LegacyGymEnv, make_env, to_gymnasium_space

__all__ = ["GymEnv", "LegacyGymEnv", "make_env", "to_gymnasium_space"]
