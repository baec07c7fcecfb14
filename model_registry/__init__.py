"""Model registry: training, model cards, the sha256-checked artifact store, a cached loader."""
