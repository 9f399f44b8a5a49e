"""Running sweeps: the local sweep (`sweep`), N worker processes (`workers`), shards and
Slurm job arrays (`cluster`), and progress on the terminal (`progress`). Every way of
running starts with `sweep.prepare`, which makes every check that can be made before
training and writes nothing."""
