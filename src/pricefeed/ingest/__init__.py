"""The ingest side of the state machine (Lambdas): the run plan, the ticker list, one symbol's
fetch-and-store, watermarks, dead letters."""
