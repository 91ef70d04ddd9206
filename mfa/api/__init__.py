"""The GraphQL edge: strawberry types and thin resolvers over the domain functions."""
