"""Shared pieces of the multimodal (dataset) suites: text metrics and image helpers."""
