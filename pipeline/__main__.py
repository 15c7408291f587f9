"""Entry point: ``python -m pipeline`` (progress bars one line per update when stderr is not
a terminal, see :class:`pipeline.cli.LinePerUpdate`; OpenMP's idle threads asleep when the
machine is already busy, see :func:`pipeline.cli.choose_omp_wait_policy`)."""

import sys

from pipeline.cli import choose_omp_wait_policy, line_per_update_stderr, main

if __name__ == "__main__":
    choose_omp_wait_policy()  # before anything imports torch
    line_per_update_stderr()
    sys.exit(main())
