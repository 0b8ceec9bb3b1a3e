"""Tests of the shop API demo target (examples/shop_api)."""
