"""Life-cycle assessment of the recorded flows with Brightway.

The only package that imports Brightway. Until the LCA issue lands it holds no calculation:
the footprint, allocation and attribution modules arrive with it.
"""
