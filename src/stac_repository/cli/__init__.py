"""The ``stac-repository`` and ``stac-processor`` commands: parse, call the library, render."""
