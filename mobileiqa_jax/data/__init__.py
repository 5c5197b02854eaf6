"""Datasets and input pipelines: TFDS builders, CSV and synthetic sources, grain loaders."""
