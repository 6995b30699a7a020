"""Agent backends: one module per backend, all behind `base.Backend`."""
