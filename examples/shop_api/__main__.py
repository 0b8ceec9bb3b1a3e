"""Entry point for ``python -m examples.shop_api``."""

from examples.shop_api.cli import main

raise SystemExit(main())
