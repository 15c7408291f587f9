"""Learned image resizing workflow."""
