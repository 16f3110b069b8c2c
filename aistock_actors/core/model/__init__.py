"""Pure model lifecycle: causal features, labels, purged splits, the models and the training
pipeline."""
