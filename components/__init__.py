"""Reusable UI pieces in Python (NiceGUI), with the few small Vue components they need."""
