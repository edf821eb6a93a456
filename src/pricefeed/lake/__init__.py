"""The lake's formats and storage: S3 key conventions, the raw envelope, S3 object I/O (all sides use it)."""
