"""The corpus is data for the code scan, not tests: pytest must not import it."""

collect_ignore_glob = ["*"]
