"""The protocol core of the authorization server: grants, client authentication, exchange policy, subject-token
validation and token issuance over plain data. No web framework and no SQL here (tests/server/test_layering.py)."""
