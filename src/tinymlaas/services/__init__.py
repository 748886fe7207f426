"""Application services: the lifecycle steps over the store. The CLI (and later the API) call these."""
