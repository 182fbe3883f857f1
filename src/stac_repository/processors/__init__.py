"""Processors turn products (any file, folder or URL) into STAC trees on disk."""
