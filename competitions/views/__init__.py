"""Server-rendered pages, one module per audience. They ask the same permission helpers,
selectors and services as the API."""
