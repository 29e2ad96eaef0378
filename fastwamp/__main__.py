"""``python -m fastwamp``: the same as the ``fastwamp`` command."""

import sys

from fastwamp.cli import main

if __name__ == "__main__":
    sys.exit(main())
