"""flowgraph benchmarks: engine scenarios next to baselines, measured in the same process."""
