"""Domain layer of the multiplayer agent board: models and services, free of NiceGUI."""
