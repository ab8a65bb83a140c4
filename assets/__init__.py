"""Package data: the bundled default model (default.safetensors), found via importlib.resources."""
