// privacy pages: progressive enhancement only; every page works without it.
