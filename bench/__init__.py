"""The benchmark behind `make bench` (and `tokensmith bench`): see docs/performance.md."""
