"""Core rules applied to stored state, shared by the actors and the CLI."""
