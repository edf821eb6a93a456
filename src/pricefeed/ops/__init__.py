"""What the operator's tools do, on a laptop against any stack (never shipped to Lambda or Glue): the target
stack, starting and following runs, status, the lake mirror, query, the report, the laptop login."""
