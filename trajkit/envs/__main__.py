"""``python -m trajkit.envs ENV_ID [--port P] ...``: serve a registered env over the remote env protocol.

See :func:`trajkit.envs.remote.main` for the options.
"""

from trajkit.envs.remote import main

if __name__ == "__main__":
    main()
