"""``python -m trajkit``: the ``trajkit`` command."""

import sys

from trajkit.cli import main

sys.exit(main())
