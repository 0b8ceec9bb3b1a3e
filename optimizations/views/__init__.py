"""The optimizations app's pages, one module per area."""
