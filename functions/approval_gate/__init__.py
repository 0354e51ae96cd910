"""Approval Gate's domain package: everything the Lambda handlers share.

Nothing here does I/O at import time, and each handler imports only the modules it uses,
so a cold start pays only for those.
"""
