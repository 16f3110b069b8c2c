"""Thin pykka actors: receive a message, call the core, reply."""
