"""The `flowgraph` command line: `app` holds the commands, `common` what they share (the
engine they build, how they drive and end a job), `terminal` what a person sees."""
