"""A run, stage by stage: scenarios and their `Run`, the runner, gates,
settling, observing the final state, the library API (`verify`), and the
options and reproduction lines of a run."""
