"""Training and evaluation of one run: model building, the loop, tasks, checkpoints."""
