"""`pricefeed login`: the OAuth flow for a real Fyers app from a laptop (being written)."""
