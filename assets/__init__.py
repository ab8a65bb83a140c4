"""Package data: the bundled models (default.safetensors, small.safetensors; serapp.bundle.BUNDLED_MODELS), found via importlib.resources."""
