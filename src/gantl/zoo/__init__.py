"""Package data for the model zoo: ``zoo.json`` (the index), bundled ``.safetensors`` sources and model cards."""
