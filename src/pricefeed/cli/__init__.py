"""The `pricefeed` command line (typer): each module here defines commands; `main` assembles the app."""
