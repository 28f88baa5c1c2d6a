"""Maintainer tools of the repository, not installed with keras_vae (`python -m scripts.NAME`)."""
