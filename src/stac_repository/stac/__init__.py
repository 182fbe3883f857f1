"""Pure STAC logic: documents, layout, links, extents, validation and the ChangeSet planner."""
