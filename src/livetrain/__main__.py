"""`python -m livetrain` is the same as the `livetrain` console script."""

from livetrain.cli import main

raise SystemExit(main())
