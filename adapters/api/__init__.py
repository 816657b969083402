"""The GraphQL API adapter: strawberry on FastAPI, served by `cse serve`."""
