"""Training: jitted steps, fit/fit_many, checkpoints, run folders, configs, sharding and precision."""
