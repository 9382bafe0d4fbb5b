"""The API's routes, one module per concern; `api.app` mounts them."""
