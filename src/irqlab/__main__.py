"""`python -m irqlab` runs the command line."""

from irqlab.cli.main import main

raise SystemExit(main())
