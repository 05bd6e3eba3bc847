"""cofounder: goals in, tested pull requests out, every build a durable Temporal workflow."""
