"""The benchmark suite: see bench/README.md."""
