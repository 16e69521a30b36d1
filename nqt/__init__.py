"""`nqt`: the operator's command line (registry, API keys, dead letters)."""
