"""``python -m trajkit.envs ENV_ID [--port P] ...``: serve a registered env over the remote env protocol.

A token is required (``--token-env VAR``) unless ``--no-token`` is given; see
``python -m trajkit.envs --help`` and :mod:`trajkit.envs.remote.cli` for the options.
"""

from trajkit.envs.remote.cli import main

if __name__ == "__main__":
    main()
