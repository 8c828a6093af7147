"""Running a plan: node instances and loop clones (`instances`), the synchronous state machine
that decides what runs next and what is skipped (`scheduler`, `skips`), the anyio runner that
drives it and calls the executors (`runner`), gate decisions (`decisions`), recording outcomes
to a store and rebuilding a job from them (`persistence`), the job document (`job`) and
transitions as structured events (`events`)."""
