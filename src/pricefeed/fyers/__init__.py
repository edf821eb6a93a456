"""Talking to Fyers (the ingest Lambdas): the history client, its answers as named errors, the request
windows, the account's rate budget, the symbol master."""
