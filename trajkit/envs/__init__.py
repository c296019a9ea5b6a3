"""Environment adapters, wrappers and remote (real) environments."""

from trajkit.envs.gym_env import GymEnv, LegacyGymEnv, make_env, to_gymnasium_space
from trajkit.envs.partial_obs import NO_VEL_IDS, MaskObsEnv
from trajkit.envs.remote import EnvServer, RemoteActionError, RemoteEnv, RemoteEnvError, RemoteProtocolError, serve
from trajkit.envs.wrappers import AcInObEnv, C2DEnv, ObsNormEnv, RewInObEnv, RewNormEnv, SkillEnv

__all__ = [
    "AcInObEnv",
    "C2DEnv",
    "EnvServer",
    "GymEnv",
    "LegacyGymEnv",
    "MaskObsEnv",
    "NO_VEL_IDS",
    "ObsNormEnv",
    "RemoteActionError",
    "RemoteEnv",
    "RemoteEnvError",
    "RemoteProtocolError",
    "RewInObEnv",
    "RewNormEnv",
    "SkillEnv",
    "make_env",
    "serve",
    "to_gymnasium_space",
]
