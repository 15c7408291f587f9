"""Datasets: synthetic generators, manifests of real ImageNet and AVA."""
