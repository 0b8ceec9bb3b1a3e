"""Fast mode: the shop API with every planted problem fixed the way the official docs recommend."""
