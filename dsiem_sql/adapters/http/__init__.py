"""HTTP: serve's endpoints (metrics, health, reload) and the frontend's config download."""
