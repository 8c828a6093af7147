"""What flowgraph shows of a plan or a job: `explain` (why each node ran, waited or was
skipped), `graph` (mermaid, dot and JSON drawings) and `report` (the self-contained HTML page)."""
