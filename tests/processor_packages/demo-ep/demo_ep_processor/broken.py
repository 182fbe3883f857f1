"""An entry point target that cannot be imported."""

raise ImportError("demo_ep_processor.broken needs the library 'no_such_dependency', which is not installed")
