"""The IR: graph, op table (data, with the op-kind sets), dtypes, the tracer and the passes."""
