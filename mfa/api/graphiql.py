"""GraphiQL served from files installed with the service: no CDN at run time.

The GraphiQL 3 / React 17 UMD bundles come from the ``graphene-django-graphiql-static`` wheel,
which ships them as plain package data (it has no dependencies; none of its Django code is
imported). The page below replaces strawberry's, which loads the same files from a CDN.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

ASSETS_URL = "/graphiql-assets"

FIRST_QUERY = """# The sample park's enterprises and the first flows of its ledger.
query FirstLook {
  parks(first: 5) {
    nodes {
      name
      enterprises(first: 5) { totalCount nodes { name isicCode } }
    }
  }
  flows(first: 5) {
    totalCount
    nodes {
      source { name }
      target { name }
      material { name kind }
      quantity
      unit
      periodStart
      periodEnd
      transferStatus
    }
  }
}
"""

_SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>circular-mfa · GraphiQL</title>
  <style>html, body, #graphiql {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}</style>
  <link rel="stylesheet" href="{assets}/graphiql.min.css">
{scripts}
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script>
    const fetcher = GraphiQL.createFetcher({{ url: {endpoint} }});
    ReactDOM.render(
      React.createElement(GraphiQL, {{ fetcher, defaultQuery: {query} }}),
      document.getElementById("graphiql"),
    );
  </script>
</body>
</html>
"""


def assets_directory() -> Path:
    return (
        Path(str(files("graphene_django_graphiql_static")))
        / "static"
        / ("graphene_django_graphiql_static")
    )


def page(endpoint: str = "/graphql") -> str:
    scripts = "\n".join(f'  <script src="{ASSETS_URL}/{name}"></script>' for name in _SCRIPTS)
    return _PAGE.format(
        assets=ASSETS_URL,
        scripts=scripts,
        endpoint=json.dumps(endpoint),
        query=json.dumps(FIRST_QUERY),
    )
