"""Training: data in tensors, models, objectives, recipes, and the loop that trains one run.

`engine.train_run` trains one (objective, strength, seed) of a config on data that
`data.load_splits` put in tensors; `objectives` declares the losses, `recipes` the
optimizers, schedules and augmentation, `models` the networks. Nothing here writes files.
"""
