"""Entry point: ``python -m pipeline`` (progress bars one line per update when stderr is not
a terminal; see :class:`pipeline.cli.LinePerUpdate`)."""

import sys

from pipeline.cli import line_per_update_stderr, main

if __name__ == "__main__":
    line_per_update_stderr()
    sys.exit(main())
