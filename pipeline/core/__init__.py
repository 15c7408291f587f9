"""Files, errors, manifests and noise: what every other part stands on."""
