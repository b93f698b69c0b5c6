"""Training on Spark executors: the data snapshot, the one train loop, its launchers, and the train stage."""
