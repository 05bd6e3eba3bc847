"""The offline model: a local Messages-API server playing a scripted co-founder (no accounts)."""
