"""Developer tools for the repository (not shipped with the functions)."""
