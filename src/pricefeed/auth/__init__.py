"""The Fyers login on the stack: the OAuth exchange and token lifetimes, the token secret, the workers'
token keeper, the scheduled renewal, the /oauth pages."""
