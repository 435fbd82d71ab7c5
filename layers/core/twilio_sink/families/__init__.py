"""Event families: one module per entity, each declaring its types, payload model and precedence."""
