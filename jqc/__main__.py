"""``python -m jqc`` runs the jqc command line."""

from jqc.cli import main

raise SystemExit(main())
