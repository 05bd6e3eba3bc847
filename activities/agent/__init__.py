"""The coding agent's side of a build: the tools it calls in the build's sandbox."""
