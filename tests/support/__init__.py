"""Helpers shared by the test suite (running servers on free ports, fixtures' building blocks)."""
