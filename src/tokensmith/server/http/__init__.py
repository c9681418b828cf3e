"""Thin Starlette glue: each module turns HTTP into the protocol core's input and its output into HTTP."""
