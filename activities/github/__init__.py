"""GitHub through a GitHub App (githubkit): installation tokens, pushes and pull requests."""
