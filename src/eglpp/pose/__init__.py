"""Human pose estimation: model, heatmaps, metrics, datasets, training."""
