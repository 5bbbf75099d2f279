"""Read side: one module per read model, query objects and the GET endpoints."""
