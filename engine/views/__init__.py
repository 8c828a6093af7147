"""What flowgraph shows of a plan or a job: `explain` (why each node ran, waited or was
skipped), `graph` (mermaid, dot and JSON drawings), `job_view` (the job page's data, drawn by
the console of `flowgraph serve` and by the static page) and `report` (the static page: one
self-contained HTML file)."""
