"""Benchmarks of the loaders and of the training loop."""
