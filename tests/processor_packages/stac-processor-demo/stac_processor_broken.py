"""A processor module that cannot be imported, as when a plugin's own dependency is missing."""

raise ImportError("stac_processor_broken needs the library 'no_such_dependency', which is not installed")
