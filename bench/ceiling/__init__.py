"""The minimal-Python ceiling app (bench/ceiling/app.py)."""
