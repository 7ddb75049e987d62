"""Benchmarks: side-by-side measurements that print tables with ratios."""
