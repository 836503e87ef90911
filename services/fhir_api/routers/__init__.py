"""The API's routers, one per area: operational (health, metrics, metadata), bulk export, read and search."""
