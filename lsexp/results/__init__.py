"""Results on disk: the one module (`store`) that knows a sweep folder's layout, plans the
runs of a config, claims them, and writes and reads them atomically."""
