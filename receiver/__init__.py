"""Reference webhook receiver for hookclient (Starlette + uvicorn + SQLite)."""
