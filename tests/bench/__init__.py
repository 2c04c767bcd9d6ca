"""`workshop bench --short`: the benchmark's whole code path, checked for shape, not values."""
