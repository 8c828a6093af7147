"""From a workflow document to a plan: read and check the document (`document`, `models`,
`run_inputs`), gather the edges of every kind (`edges`), parse the expressions (`expressions`),
and compile the flow into a networkx DAG of templates (`compiler`). Nothing here runs a node."""
